/* posix_side.c - symbols test: the glibc POSIX mqueue half (<mqueue.h> only) of the program. */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int posix_side_run(char *why, size_t len);

/* program_is_pie: whether this program is position-independent (ET_DYN), so
 * that taking a function's address yields the function itself. */
static int program_is_pie(void)
{
	unsigned char ident[EI_NIDENT + 2];
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, ident, sizeof(ident));
	close(fd);
	if (n != (ssize_t)sizeof(ident) || memcmp(ident, ELFMAG, SELFMAG) != 0)
		return 0;
	uint16_t type;
	memcpy(&type, ident + EI_NIDENT, sizeof(type)); /* e_type, native byte order */
	return type == ET_DYN;
}

/* is_glibc_mq_send: whether SEEN is the mq_send that glibc (libc, or librt
 * before glibc 2.34) defines, as its own handle finds it. */
static int is_glibc_mq_send(void *seen, char *why, size_t len)
{
	static const char *const libs[] = {"libc.so.6", "librt.so.1"};
	void *glibc = NULL;
	for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
		void *h = dlopen(libs[i], RTLD_LAZY | RTLD_NOLOAD);
		if (h == NULL)
			continue;
		void *f = dlsym(h, "mq_send");
		dlclose(h);
		if (f == seen)
			return 1;
		if (glibc == NULL)
			glibc = f;
	}
	Dl_info a, b;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	dladdr(seen, &a);
	if (glibc)
		dladdr(glibc, &b);
	snprintf(why, len, "mq_send here is %p (in %s), glibc's is %p (in %s)", seen,
	         a.dli_fname ? a.dli_fname : "?", glibc, b.dli_fname ? b.dli_fname : "?");
	return 0;
}

int posix_side_run(char *why, size_t len)
{
	static const char msg[] = "posix side \0 binary";
	char name[64], buf[128];
	unsigned prio = 0;
	struct mq_attr attr;
	int rc = -1;

	/* The mq_send this file links to must be glibc's, not libmq's. (In a
	 * non-PIE program its address is a PLT stub: only the calls can tell.) */
	if (program_is_pie() && !is_glibc_mq_send((void *)mq_send, why, len))
		return -1;

	/* The real proof: the POSIX calls work. */
	snprintf(name, sizeof(name), "/mqsym-%d", (int)getpid());
	memset(&attr, 0, sizeof(attr));
	attr.mq_maxmsg = 4;
	attr.mq_msgsize = sizeof(buf);
	mqd_t mq = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, &attr);
	if (mq == (mqd_t)-1) {
		snprintf(why, len, "mq_open(%s): %s", name, strerror(errno));
		return -1;
	}
	if (mq_send(mq, msg, sizeof(msg), 7) != 0) {
		snprintf(why, len, "mq_send(%s): %s", name, strerror(errno));
		goto out;
	}
	memset(buf, 0, sizeof(buf));
	ssize_t n = mq_receive(mq, buf, sizeof(buf), &prio);
	if (n < 0) {
		snprintf(why, len, "mq_receive(%s): %s", name, strerror(errno));
		goto out;
	}
	if (n != (ssize_t)sizeof(msg) || memcmp(buf, msg, sizeof(msg)) != 0 || prio != 7) {
		snprintf(why, len, "mq_receive(%s) got %zd bytes, priority %u: not what was sent",
		         name, n, prio);
		goto out;
	}
	rc = 0;
out:
	if (mq_close(mq) != 0 && rc == 0) {
		snprintf(why, len, "mq_close(%s): %s", name, strerror(errno));
		rc = -1;
	}
	if (mq_unlink(name) != 0 && rc == 0) {
		snprintf(why, len, "mq_unlink(%s): %s", name, strerror(errno));
		rc = -1;
	}
	return rc;
}
