/*
 * error.h - libmq's one error convention: -1 (or NULL) and errno, plus a
 * per-thread one-line detail for mq_errdetail() that names the queue and
 * says what is wrong and what to do.
 */
#ifndef LIBMQ_ERROR_H
#define LIBMQ_ERROR_H

/* error_set: record the detail (printf FMT), set errno to ERR, return -1. */
int error_set(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* error_null: as error_set, returning NULL for the calls that return handles. */
void *error_null(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* LIBMQ_ERROR_H */
