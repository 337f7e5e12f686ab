/* config.c - read mqbroker's configuration file whole, check it, cut it into entries. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

char *config_escape(const char *s, char *out, size_t outlen)
{
	size_t o = 0;
	if (!outlen)
		return out;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char piece[5];
		if (ch < 0x20 || ch == 0x7f)
			snprintf(piece, sizeof(piece), "\\x%02x", ch);
		else if (ch == '\\')
			snprintf(piece, sizeof(piece), "\\\\");
		else
			piece[0] = (char)ch, piece[1] = '\0';
		size_t n = strlen(piece);
		if (o + n + 4 > outlen) { /* room for "..." and the NUL */
			if (o + 4 <= outlen)
				memcpy(out + o, "...", 3), o += 3;
			break;
		}
		memcpy(out + o, piece, n);
		o += n;
	}
	out[o] = '\0';
	return out;
}

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, struct config *c,
                                                      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	config_free(c);
	return -1;
}

/* read_whole: at most CONFIG_MAX_BYTES + 1 bytes of FD into a new buffer
 * (NUL-terminated); *LEN says how many. Returns the buffer or NULL (errno). */
static char *read_whole(int fd, size_t *len)
{
	char *buf = malloc(CONFIG_MAX_BYTES + 2);
	if (!buf)
		return NULL;
	size_t got = 0;
	while (got <= CONFIG_MAX_BYTES) {
		ssize_t r = read(fd, buf + got, CONFIG_MAX_BYTES + 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	*len = got;
	return buf;
}

static int key_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
}

static char *trim(char *s, char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return s;
}

int config_read(const char *path, struct config *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	/* O_NONBLOCK: a FIFO must not hold us up before fstat refuses it. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return fail(err, errlen, c, "%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return fail(err, errlen, c, "%s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(err, errlen, c, "%s: not a regular file (%s)", path,
		            S_ISDIR(st.st_mode)    ? "a directory"
		            : S_ISFIFO(st.st_mode) ? "a FIFO"
		            : S_ISCHR(st.st_mode)  ? "a character device"
		            : S_ISBLK(st.st_mode)  ? "a block device"
		            : S_ISSOCK(st.st_mode) ? "a socket"
		                                   : "not a file");
	}
	if ((size_t)st.st_size > CONFIG_MAX_BYTES) {
		close(fd);
		return fail(err, errlen, c,
		            "%s: %lld bytes, more than the %zu a config file may have", path,
		            (long long)st.st_size, CONFIG_MAX_BYTES);
	}
	size_t len = 0;
	c->text = read_whole(fd, &len);
	int e = errno;
	close(fd);
	if (!c->text)
		return fail(err, errlen, c, "%s: cannot read: %s", path, strerror(e));
	if (len > CONFIG_MAX_BYTES) /* it grew while we read */
		return fail(err, errlen, c, "%s: more than the %zu bytes a config file may have",
		            path, CONFIG_MAX_BYTES);
	c->path = strdup(path);
	if (!c->path)
		return fail(err, errlen, c, "%s: out of memory", path);

	/* Check every line before cutting any: NULs and control characters,
	 * lengths; then keys and values. */
	unsigned line = 1;
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && c->text[i] != '\n') {
			unsigned char ch = (unsigned char)c->text[i];
			if (ch == '\0')
				return fail(err, errlen, c, "%s:%u: a NUL byte (column %zu)", path,
				            line, i - start + 1);
			if ((ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f)
				return fail(err, errlen, c,
				            "%s:%u: control character 0x%02x (column %zu)", path,
				            line, ch, i - start + 1);
			if (ch == '\r' && i + 1 < len && c->text[i + 1] != '\n')
				return fail(err, errlen, c,
				            "%s:%u: a carriage return inside the line (column %zu)",
				            path, line, i - start + 1);
			continue;
		}
		size_t n = i - start;
		if (n && c->text[i - 1] == '\r')
			n--;
		if (n > CONFIG_MAX_LINE)
			return fail(err, errlen, c, "%s:%u: line of %zu bytes, longer than %d",
			            path, line, n, CONFIG_MAX_LINE);
		line++;
		start = i + 1;
	}

	size_t cap = 0;
	line = 0;
	char *p = c->text, *end_all = c->text + len;
	while (p < end_all) {
		line++;
		char *nl = memchr(p, '\n', (size_t)(end_all - p));
		char *end = nl ? nl : end_all;
		char *next = nl ? nl + 1 : end_all;
		*end = '\0';
		if (end > p && end[-1] == '\r')
			*--end = '\0';
		char *hash = end > p ? memchr(p, '#', (size_t)(end - p)) : NULL;
		if (hash) {
			*hash = '\0';
			end = hash;
		}
		char *s = trim(p, end);
		p = next;
		if (!*s)
			continue;
		char *k = s;
		while (key_char(*s))
			s++;
		char *key_end = s;
		if (key_end == k)
			return fail(err, errlen, c, "%s:%u: expected an option name, found '%c'",
			            path, line, *k);
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '=')
			s++;
		else if (*s && s == key_end)
			return fail(err, errlen, c,
			            "%s:%u: option names are lower-case letters, digits and '-' "
			            "(found '%c')",
			            path, line, *s);
		*key_end = '\0';
		char *v = trim(s, s + strlen(s));
		if (c->n == cap) {
			cap = cap ? 2 * cap : 16;
			struct config_entry *ne = realloc(c->entries, cap * sizeof(*ne));
			if (!ne)
				return fail(err, errlen, c, "%s: out of memory", path);
			c->entries = ne;
		}
		c->entries[c->n++] = (struct config_entry){.line = line, .key = k, .value = v};
	}
	return 0;
}

void config_free(struct config *c)
{
	free(c->entries);
	free(c->text);
	free(c->path);
	memset(c, 0, sizeof(*c));
}
