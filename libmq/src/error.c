/* error.c - errno plus a per-thread error detail (mq_errdetail). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "error.h"
#include "libmq.h"

static _Thread_local char detail[512];

static void error_vset(int err, const char *fmt, va_list ap)
{
	vsnprintf(detail, sizeof(detail), fmt, ap);
	errno = err;
}

int error_set(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_vset(err, fmt, ap);
	va_end(ap);
	return -1;
}

void *error_null(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_vset(err, fmt, ap);
	va_end(ap);
	return NULL;
}

const char *mq_errdetail(void)
{
	return detail;
}
