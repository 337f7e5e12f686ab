/*
 * config.h - mqbroker's configuration file, read whole and checked before any
 * of it is applied.
 *
 * The format: one "key = value" (or "key value", or a bare "key" for yes) per
 * line; '#' starts a comment that runs to the end of the line; blank lines
 * and leading or trailing blanks do not count; a line may end in CR LF. A key
 * may repeat (the caller says which may). What is refused, with FILE:LINE and
 * the reason, before anything is applied: a file that is not a regular file
 * (a directory, a FIFO, a device such as /dev/zero), one over
 * CONFIG_MAX_BYTES, a NUL byte or another control character (but tab), a line
 * over CONFIG_MAX_LINE bytes (never split into two: its tail would otherwise
 * be read as a line of its own), and a key that is not lower-case letters,
 * digits and '-'.
 */
#ifndef MQBROKER_CONFIG_H
#define MQBROKER_CONFIG_H

#include <stddef.h>

#define CONFIG_MAX_BYTES ((size_t)64 * 1024)
#define CONFIG_MAX_LINE  1024 /* bytes, without the line end */

struct config_entry {
	unsigned line; /* 1-based */
	char *key;
	char *value; /* "" for a bare key */
};

struct config {
	char *path;
	char *text; /* the file, cut into keys and values in place */
	struct config_entry *entries;
	size_t n;
};

/* config_read: read and check PATH into *C. Returns 0, or -1 with a one-line
 * reason ("PATH:LINE: ..." or "PATH: ...") in ERR (ERRLEN bytes); *C is then
 * empty. */
int config_read(const char *path, struct config *c, char *err, size_t errlen);

/* config_free: release what config_read kept (a zeroed *C is fine). */
void config_free(struct config *c);

/* config_escape: S with control characters, DEL and backslashes written as
 * \xNN (\\), into OUT (OUTLEN bytes, always terminated; a longer result is
 * cut and ends in "..."). Returns OUT. For every name or value the broker
 * prints: nothing a user typed reaches the log raw. */
char *config_escape(const char *s, char *out, size_t outlen);

#endif /* MQBROKER_CONFIG_H */
