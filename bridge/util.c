/* util.c - what every mqbridge module uses: the log line, the clock, sleeping, the stop flag. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"

atomic_int bridge_stopping;

void bridge_log(const char *fmt, ...)
{
	char line[2048];
	int n = snprintf(line, sizeof(line), "mqbridge: ");
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

int64_t bridge_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bridge_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void bridge_sleep_raw_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void bridge_sleep_ms(int64_t ms)
{
	while (ms > 0 && !atomic_load(&bridge_stopping)) {
		int64_t step = ms < 100 ? ms : 100;
		bridge_sleep_raw_ms(step);
		ms -= step;
	}
}
