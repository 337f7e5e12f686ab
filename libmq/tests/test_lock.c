/* test_lock.c - unit tests: the side locks (garbage, dead and live holders, intent records) and
 * mq_interrupt. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_TAG "lock"
#include "segment.h" /* the layout: where the lock words, intent records and client table are */
#include "testapi.h"

/*
 * These tests play a buggy or stuck peer: they write the segment's lock
 * words and intent records through a mapping of their own (/dev/shm/NAME),
 * at the offsets segment.h gives, and see what the library's calls make of
 * it. Loop tests: _i bit 0 is the geometry (testapi.h), bit 1 the side (0:
 * the send lock, driven by mq_send; 1: the receive lock, driven by mq_recv
 * with a message queued), higher bits as each test says.
 */

static int side_of(int i)
{
	return (i >> 1) & 1;
}

static const char *side_name(int side)
{
	return side ? "receive" : "send";
}

/* ------------------------------------------------------ the raw segment */

static unsigned char *raw_map(void)
{
	char path[128];
	int fd = open(test_shm_path(path, qname), O_RDWR);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	void *p = mmap(NULL, sizeof(struct mq_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	ck_assert_msg(p != MAP_FAILED, "mmap %s: %s", path, strerror(errno));
	return p;
}

static void raw_unmap(unsigned char *raw)
{
	munmap(raw, sizeof(struct mq_shm));
}

static uint32_t *raw_u32(unsigned char *raw, size_t off)
{
	return (uint32_t *)(raw + off);
}

static size_t lock_off(int side)
{
	return side ? offsetof(struct mq_shm, recv.lock) : offsetof(struct mq_shm, send.lock);
}

static size_t op_off(int side)
{
	return side ? offsetof(struct mq_shm, recv.intent.op)
	            : offsetof(struct mq_shm, send.intent.op);
}

#define CLIENT_OFF(i, field)                                                                       \
	(offsetof(struct mq_shm, clients) + (size_t)(i) * sizeof(struct mq_client_slot) +          \
	 offsetof(struct mq_client_slot, field))

static void set_word(unsigned char *raw, size_t off, uint32_t v)
{
	__atomic_store_n(raw_u32(raw, off), v, __ATOMIC_SEQ_CST);
}

static uint32_t get_word(unsigned char *raw, size_t off)
{
	return __atomic_load_n(raw_u32(raw, off), __ATOMIC_SEQ_CST);
}

/* token_of: the owner token of PID's entry in the client table (it must
 * have exactly one, ACTIVE). */
static uint32_t token_of(unsigned char *raw, pid_t pid)
{
	uint32_t token = 0;
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++) {
		if (get_word(raw, CLIENT_OFF(i, state)) != MQ_CLIENT_ACTIVE ||
		    (pid_t)get_word(raw, CLIENT_OFF(i, pid)) != pid)
			continue;
		ck_assert_msg(token == 0, "pid %d has two entries", (int)pid);
		token = mq_token(i + 1, get_word(raw, CLIENT_OFF(i, gen)));
	}
	ck_assert_msg(token != 0, "pid %d has no entry", (int)pid);
	return token;
}

static uint64_t repairs(mq_t *q)
{
	return stats_of(q).lock_repairs_total;
}

/* ---------------------------------------------------------- other holders */

/* A live process attached to the queue, stopped (SIGSTOP): a holder that
 * never lets go, and never dies. */
struct holder {
	pid_t pid;
	uint32_t token;
};

static struct holder stopped_holder(unsigned char *raw)
{
	struct chan ch;
	chan_open(&ch);
	pid_t pid = fork_child();
	if (pid == 0) {
		mq_t *c = mq_attach(qname);
		if (!c)
			_exit(10);
		chan_say(&ch, "A", 1);
		for (;;)
			pause();
	}
	char a;
	ck_assert_int_eq(chan_hear(&ch, &a, 1, 5000), 0);
	chan_close(&ch);
	ck_assert_int_eq(kill(pid, SIGSTOP), 0);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, WUNTRACED), pid);
	ck_assert(WIFSTOPPED(st));
	struct holder h = {pid, token_of(raw, pid)};
	/* A holder that holds: its entry says so for both locks (a lock word
	 * naming a live client that says it holds nothing is taken over after
	 * a while, as a forged one). */
	unsigned slot = (h.token & MQ_TOKEN_SLOT_MASK) - 1;
	set_word(raw, CLIENT_OFF(slot, holding), 0x0101);
	return h;
}

/* dead_token: the token of a process that attached and died attached. */
static uint32_t dead_token(unsigned char *raw, pid_t *pid_out)
{
	struct chan ch;
	chan_open(&ch);
	pid_t pid = fork_child();
	if (pid == 0) {
		mq_t *c = mq_attach(qname);
		if (!c)
			_exit(10);
		chan_say(&ch, "A", 1);
		for (;;)
			pause();
	}
	char a;
	ck_assert_int_eq(chan_hear(&ch, &a, 1, 5000), 0);
	chan_close(&ch);
	uint32_t token = token_of(raw, pid);
	ck_assert_int_eq(kill_child(pid), 1000 + SIGKILL);
	if (pid_out)
		*pid_out = pid;
	return token;
}

/* ------------------------------------------------------- calls in a thread */

enum call {
	C_SEND,
	C_RECV,
	C_RECV_LEASE,
	C_PEEK,
	C_RECV_BATCH,
	C_SEND_BATCH,
	C_ACK,
	C_COMMIT,
	C_CANCEL
};

static const char *call_name(enum call c)
{
	static const char *const names[] = {"mq_send", "mq_recv",       "mq_recv_lease",
	                                    "mq_peek", "mq_recv_batch", "mq_send_batch",
	                                    "mq_ack",  "mq_commit",     "mq_cancel"};
	return names[c];
}

/* A call made in a thread of its own (with the stop signals blocked, so that
 * a handler runs elsewhere and only mq_interrupt can stop it). */
struct bg {
	mq_t *q;
	enum call call;
	int timeout_ms;
	mq_lease_t lease; /* C_ACK */
	void *buf;        /* C_COMMIT, C_CANCEL */
	pthread_t thread;
	atomic_int done;
	long ret;
	int err;
	double returned_at;
	char detail[256];
};

static void *bg_thread(void *arg)
{
	struct bg *b = arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	char buf[64];
	size_t len;
	mq_lease_t l;
	struct iovec in[2] = {{buf, 32}, {buf + 32, 32}};
	struct iovec out[2] = {iov_text("bg1"), iov_text("bg2")};
	errno = 0;
	switch (b->call) {
	case C_SEND:
		b->ret = mq_send(b->q, "bg", 2, b->timeout_ms);
		break;
	case C_RECV:
		b->ret = mq_recv(b->q, buf, sizeof(buf), b->timeout_ms);
		break;
	case C_RECV_LEASE:
		b->ret = mq_recv_lease(b->q, buf, sizeof(buf), b->timeout_ms, &l);
		break;
	case C_PEEK:
		b->ret = mq_peek(b->q, &len, b->timeout_ms, &l) ? (long)len : -1;
		break;
	case C_RECV_BATCH:
		b->ret = mq_recv_batch(b->q, in, 2, b->timeout_ms);
		break;
	case C_SEND_BATCH:
		b->ret = mq_send_batch(b->q, out, 2, b->timeout_ms);
		break;
	case C_ACK:
		b->ret = mq_ack(b->q, &b->lease);
		break;
	case C_COMMIT:
		b->ret = mq_commit(b->q, b->buf, 2);
		break;
	case C_CANCEL:
		b->ret = mq_cancel(b->q, b->buf);
		break;
	}
	b->err = errno;
	snprintf(b->detail, sizeof(b->detail), "%s", mq_errdetail());
	b->returned_at = now_ms();
	atomic_store(&b->done, 1);
	return NULL;
}

static void bg_start(struct bg *b, mq_t *q, enum call call, int timeout_ms)
{
	b->q = q;
	b->call = call;
	b->timeout_ms = timeout_ms;
	atomic_store(&b->done, 0);
	ck_assert_int_eq(pthread_create(&b->thread, NULL, bg_thread, b), 0);
}

/* bg_wait: whether the call returned within MS. */
static int bg_wait(struct bg *b, int ms)
{
	double end = now_ms() + ms;
	while (!atomic_load(&b->done) && now_ms() < end)
		sleep_ms(1);
	return atomic_load(&b->done);
}

/* bg_join: join the call's thread. One still blocked after its test gave up
 * on it is freed first: mq_interrupt, then the lock words cleared. */
static void bg_join(struct bg *b, unsigned char *raw)
{
	if (!bg_wait(b, 0)) {
		mq_interrupt(b->q);
		if (!bg_wait(b, 300) && raw) {
			set_word(raw, lock_off(0), 0);
			set_word(raw, lock_off(1), 0);
		}
		ck_assert_msg(bg_wait(b, 5000), "%s could not be freed", call_name(b->call));
	}
	ck_assert_int_eq(pthread_join(b->thread, NULL), 0);
}

/* side_call: the call that takes SIDE's lock first (a message is queued for
 * the receive side). */
static long side_call(mq_t *q, int side, int timeout_ms)
{
	char buf[64];
	return side ? (long)mq_recv(q, buf, sizeof(buf), timeout_ms)
	            : mq_send(q, "x", 1, timeout_ms);
}

/* -------------------------------------------------------- garbage lock words */

/* A lock word scribbled with garbage while the lock is free: the next call
 * takes it over (lock_repairs_total + 1) and succeeds, whatever its timeout
 * (bit 2 of _i: 1000 ms or -1). */
START_TEST(test_garbage_lock_word_taken_over)
{
	int side = side_of(_i), timeout = (_i & 4) ? -1 : 1000;
	const uint32_t garbage[] = {1,
	                            0xffffffffu,
	                            (uint32_t)getpid(),
	                            0x7fffffffu,
	                            0x200 /* entry 0, generation 1 */,
	                            0x80000101u};
	/* room for every garbage value's message (the send side keeps them) */
	mq_t *q = create_geo(_i, 8);
	unsigned char *raw = raw_map();
	for (size_t k = 0; k < sizeof(garbage) / sizeof(garbage[0]); k++) {
		if (side)
			send_text(q, "x");
		set_word(raw, lock_off(side), garbage[k]);
		struct mq_inspection in = inspect_of(q);
		struct mq_lock_info *li = side ? &in.recv_lock : &in.send_lock;
		ck_assert_uint_eq(li->word, garbage[k]);
		ck_assert_int_eq(li->holder_alive, 0);
		ck_assert_int_eq(in.sound, 0);
		ck_assert_msg(strstr(in.problem, side ? "the receive lock is held by"
		                                      : "the send lock is held by"),
		              "mq_inspect: \"%s\"", in.problem);

		uint64_t r0 = repairs(q);
		double t0 = now_ms();
		long rc = side_call(q, side, timeout);
		double elapsed = now_ms() - t0;
		ck_assert_msg(rc == (side ? 1 : 0), "%s lock word 0x%08x, timeout %d: %ld (%s)",
		              side_name(side), garbage[k], timeout, rc, mq_errdetail());
		ck_assert_msg(elapsed < 500, "%s lock word 0x%08x: took %.0f ms", side_name(side),
		              garbage[k], elapsed);
		ck_assert_msg(repairs(q) == r0 + 1, "lock word 0x%08x: %llu repairs, expected %llu",
		              garbage[k], (unsigned long long)repairs(q),
		              (unsigned long long)r0 + 1);
		ck_assert_uint_eq(get_word(raw, lock_off(side)), 0);
		assert_sound(q);
	}
	/* The queue works. */
	send_text(q, "after");
	if (!side)
		for (size_t k = 0; k < sizeof(garbage) / sizeof(garbage[0]); k++)
			expect_text(q, "x");
	expect_text(q, "after");
	expect_empty(q);
	raw_unmap(raw);
	destroy(q);
}
END_TEST

/* Our own token in a free lock word: nobody in this process holds the lock,
 * so the word was forged (handle.h keeps holds_send/holds_recv for that):
 * taken over like garbage, not waited for until the timeout. */
START_TEST(test_lock_word_forged_with_own_token_taken_over)
{
	int side = side_of(_i);
	mq_t *q = create_geo(_i, 4);
	unsigned char *raw = raw_map();
	uint32_t me = token_of(raw, getpid());
	if (side)
		send_text(q, "x");
	set_word(raw, lock_off(side), me);
	uint64_t r0 = repairs(q);
	double t0 = now_ms();
	errno = 0;
	long rc = side_call(q, side, 1000);
	double elapsed = now_ms() - t0;
	ck_assert_msg(rc == (side ? 1 : 0) && elapsed < 500,
	              "%s lock word forged with our own token 0x%x: %ld after %.0f ms, errno %d "
	              "(%s)",
	              side_name(side), me, rc, elapsed, errno, mq_errdetail());
	ck_assert_uint_eq(repairs(q), r0 + 1);
	raw_unmap(raw);
	destroy(q);
}
END_TEST

/* --------------------------------------------------------------- live holders */

/* A lock held by a live process that does not let go (stopped): a call with
 * a timeout waits for it that long and says who holds it; once the holder
 * is SIGKILLed, a waiting call (timeout -1) takes the lock over at once. */
START_TEST(test_live_holder_timeout_then_killed_holder_taken_over)
{
	int side = side_of(_i);
	mq_t *q = create_geo(_i, 4);
	unsigned char *raw = raw_map();
	struct holder h = stopped_holder(raw);
	if (side)
		send_text(q, "x");
	set_word(raw, lock_off(side), h.token);
	struct mq_inspection in = inspect_of(q);
	struct mq_lock_info *li = side ? &in.recv_lock : &in.send_lock;
	ck_assert_int_eq(li->holder_pid, h.pid);
	ck_assert_int_eq(li->holder_alive, 1);

	char want[160];
	snprintf(want, sizeof(want), "the timeout passed waiting for the %s lock (held by pid %d)",
	         side_name(side), (int)h.pid);
	uint64_t r0 = repairs(q);
	double t0 = now_ms();
	EXPECT_ERR(side_call(q, side, 100), ETIMEDOUT, want);
	double elapsed = now_ms() - t0;
	ck_assert_msg(elapsed >= 99 && elapsed < 600, "ETIMEDOUT after %.1f ms", elapsed);
	ck_assert_uint_eq(repairs(q), r0);
	ck_assert_uint_eq(get_word(raw, lock_off(side)) & MQ_TOKEN_MASK, h.token);
	ck_assert_uint_eq(stats_of(q).depth, (uint64_t)side); /* nothing sent, nothing taken */
	assert_sound(q);                                      /* a live holder is no problem */

	struct bg b;
	bg_start(&b, q, side ? C_RECV : C_SEND, -1);
	ck_assert_msg(!bg_wait(&b, 100), "%s(-1) returned while the lock was held: %ld (%s)",
	              call_name(b.call), b.ret, b.detail);
	double killed_at = now_ms();
	ck_assert_int_eq(kill_child(h.pid), 1000 + SIGKILL);
	int done = bg_wait(&b, 2000);
	bg_join(&b, raw);
	ck_assert_msg(done, "%s(-1) still blocked 2 s after the holder died", call_name(b.call));
	ck_assert_msg(b.ret == (side ? 1 : 0), "%s: %ld (%s)", call_name(b.call), b.ret, b.detail);
	ck_assert_msg(b.returned_at - killed_at < 500, "took the lock over %.0f ms after the kill",
	              b.returned_at - killed_at);
	ck_assert_uint_eq(repairs(q), r0 + 1);
	ck_assert_uint_eq(get_word(raw, lock_off(side)), 0);
	struct mq_reaped r;
	ck_assert_int_eq(mq_reap(q, &r, 1, 1000), 1);
	assert_sound(q);
	raw_unmap(raw);
	destroy(q);
}
END_TEST

/* A lock word naming a live client whose entry says it holds nothing (a
 * word a peer wrote there, or restored after its holder let go) is taken
 * over once that lasted 200 ms, even across calls with shorter timeouts. */
START_TEST(test_live_client_holding_nothing_taken_over)
{
	int side = side_of(_i);
	mq_t *q = create_geo(_i, 4);
	unsigned char *raw = raw_map();
	struct holder h = stopped_holder(raw);
	unsigned slot = (h.token & MQ_TOKEN_SLOT_MASK) - 1;
	set_word(raw, CLIENT_OFF(slot, holding), 0); /* it says: nothing held */
	if (side)
		send_text(q, "x");
	set_word(raw, lock_off(side), h.token);
	uint64_t r0 = repairs(q);
	double t0 = now_ms();
	long rc = -1;
	int calls = 0;
	while (rc < 0 && now_ms() - t0 < 2000) {
		rc = side_call(q, side, 50); /* timeouts shorter than the 200 ms */
		calls++;
		if (rc < 0)
			ck_assert_msg(errno == ETIMEDOUT, "errno %d (%s)", errno, mq_errdetail());
	}
	double elapsed = now_ms() - t0;
	ck_assert_msg(rc == (side ? 1 : 0),
	              "%s lock word of a live client holding nothing: %ld "
	              "after %.0f ms (%s)",
	              side_name(side), rc, elapsed, mq_errdetail());
	ck_assert_msg(elapsed >= 190 && calls > 1, "taken over after %.0f ms, %d calls", elapsed,
	              calls);
	ck_assert_uint_eq(repairs(q), r0 + 1);
	kill_child(h.pid);
	raw_unmap(raw);
	destroy(q);
}
END_TEST

/* Timeout 0 never blocks: with the lock held by a live process that does not
 * let go, the call returns at once (EAGAIN) instead of waiting for it. */
START_TEST(test_live_holder_timeout_zero_does_not_block)
{
	int side = side_of(_i);
	mq_t *q = create_geo(_i, 4);
	unsigned char *raw = raw_map();
	struct holder h = stopped_holder(raw);
	if (side)
		send_text(q, "x");
	set_word(raw, lock_off(side), h.token);
	struct bg b;
	bg_start(&b, q, side ? C_RECV : C_SEND, 0);
	int done = bg_wait(&b, 1000);
	bg_join(&b, raw);
	ck_assert_msg(done,
	              "%s(timeout 0) with the %s lock held by live pid %d: still blocked "
	              "after 1 s",
	              call_name(b.call), side_name(side), (int)h.pid);
	ck_assert_msg(b.ret == -1 && b.err == EAGAIN, "%s(timeout 0): %ld errno %d (%s)",
	              call_name(b.call), b.ret, b.err, b.detail);
	ck_assert_msg(strstr(b.detail, "lock"), "detail \"%s\" does not name the lock", b.detail);
	kill_child(h.pid);
	raw_unmap(raw);
	destroy(q);
}
END_TEST

/* The spin before sleeping on a held lock is bounded by the deadline too. */
START_TEST(test_live_holder_long_spin_respects_timeout)
{
	int side = side_of(_i);
	mq_t *q = create_geo(_i, 4);
	unsigned char *raw = raw_map();
	struct holder h = stopped_holder(raw);
	ck_assert_int_eq(mq_set_spin(q, 1000000), 0);
	if (side)
		send_text(q, "x");
	set_word(raw, lock_off(side), h.token);
	double t0 = now_ms();
	char want[64];
	snprintf(want, sizeof(want), "waiting for the %s lock", side_name(side));
	EXPECT_ERR(side_call(q, side, 50), ETIMEDOUT, want);
	double elapsed = now_ms() - t0;
	ck_assert_msg(elapsed >= 49 && elapsed < 500,
	              "with a 1 s spin, a 50 ms timeout on a held %s lock: ETIMEDOUT after %.0f ms",
	              side_name(side), elapsed);
	kill_child(h.pid);
	raw_unmap(raw);
	destroy(q);
}
END_TEST

/* ------------------------------------------------------------- mq_interrupt */

static mq_t *volatile handler_q;
static volatile double handler_at;

static void on_stop_signal(int sig)
{
	(void)sig;
	int saved = errno;
	mq_interrupt(handler_q);
	errno = saved;
}

/*
 * A SIGTERM or SIGINT handler that calls mq_interrupt stops a call blocked
 * in another thread (which has the signal blocked) within 100 ms. Bit 2 of
 * _i: SIGTERM or SIGINT; bit 3: the call waits for a message (asleep on an
 * empty queue, the receive side only) or for a lock held by a live stopped
 * process.
 */
START_TEST(test_signal_handler_interrupt_stops_blocked_call)
{
	int side = side_of(_i), sig = (_i & 4) ? SIGINT : SIGTERM, on_lock = (_i & 8) != 0;
	mq_t *q = create_geo(_i, 4);
	unsigned char *raw = raw_map();
	struct holder h = {0, 0};
	if (on_lock) {
		h = stopped_holder(raw);
		if (side)
			send_text(q, "x");
		set_word(raw, lock_off(side), h.token);
	} else {
		ck_assert_int_eq(mq_set_spin(q, 0), 0);
		for (int k = 0; !side && k < 4; k++)
			send_text(q, "full"); /* the send side waits for room */
	}
	handler_q = q;
	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	ck_assert_int_eq(sigaction(sig, &sa, &old), 0);

	struct bg b;
	bg_start(&b, q, side ? C_RECV : C_SEND, -1);
	ck_assert_msg(!bg_wait(&b, 100), "%s returned before the signal: %ld (%s)",
	              call_name(b.call), b.ret, b.detail);
	double sent_at = now_ms();
	ck_assert_int_eq(kill(getpid(), sig), 0);
	int done = bg_wait(&b, 1000);
	bg_join(&b, raw);
	ck_assert_int_eq(sigaction(sig, &old, NULL), 0);
	ck_assert_msg(done, "%s blocked on %s: not stopped by %s + mq_interrupt within 1 s",
	              call_name(b.call),
	              on_lock ? "a held lock"
	              : side  ? "an empty queue"
	                      : "a full queue",
	              sig == SIGTERM ? "SIGTERM" : "SIGINT");
	ck_assert_msg(b.ret == -1 && b.err == EINTR, "%s: %ld errno %d (%s)", call_name(b.call),
	              b.ret, b.err, b.detail);
	ck_assert_msg(strstr(b.detail, "interrupted"), "detail \"%s\"", b.detail);
	ck_assert_msg(b.returned_at - sent_at < 100, "EINTR %.0f ms after the signal",
	              b.returned_at - sent_at);
	if (on_lock) {
		ck_assert_uint_eq(get_word(raw, lock_off(side)) & MQ_TOKEN_MASK, h.token);
		kill_child(h.pid);
	}
	/* Nothing was sent or taken by the interrupted call. */
	ck_assert_uint_eq(stats_of(q).enqueued_total, on_lock ? (uint64_t)side : side ? 0 : 4);
	raw_unmap(raw);
	destroy(q);
}
END_TEST

/* A spinning call is interrupted too (issue 12 finding 5): with a 1 s spin
 * and a 3 s timeout, an interrupt 50 ms in ends it at once. Bit 2 of _i: the
 * call spins waiting for a message / for room (0) or for a held lock (1). */
START_TEST(test_interrupt_stops_spinning_call)
{
	int side = side_of(_i), on_lock = (_i & 4) != 0;
	mq_t *q = create_geo(_i, 1);
	unsigned char *raw = raw_map();
	struct holder h = {0, 0};
	if (on_lock) {
		h = stopped_holder(raw);
		if (side)
			send_text(q, "x");
		set_word(raw, lock_off(side), h.token);
	} else if (!side) {
		send_text(q, "full");
	}
	ck_assert_int_eq(mq_set_spin(q, 1000000), 0);
	struct bg b;
	bg_start(&b, q, side ? C_RECV : C_SEND, 3000);
	sleep_ms(50);
	ck_assert_msg(!bg_wait(&b, 0), "%s returned before the interrupt: %ld (%s)",
	              call_name(b.call), b.ret, b.detail);
	double at = now_ms();
	ck_assert_int_eq(mq_interrupt(q), 0);
	int done = bg_wait(&b, 500);
	bg_join(&b, raw);
	ck_assert_msg(done && b.ret == -1 && b.err == EINTR && b.returned_at - at < 100,
	              "%s spinning on %s, interrupted 50 ms in: %ld errno %d (%s) %.0f ms after "
	              "the interrupt",
	              call_name(b.call),
	              on_lock ? "a held lock"
	              : side  ? "an empty queue"
	                      : "a full queue",
	              b.ret, b.err, b.detail, b.returned_at - at);
	if (on_lock)
		kill_child(h.pid);
	raw_unmap(raw);
	destroy(q);
}
END_TEST

/* mq_interrupt without a call waiting: pending for the next call that would
 * wait; calls that need not wait are not affected and leave it pending;
 * once answered it is gone; other handles never see it. */
START_TEST(test_interrupt_pending_semantics)
{
	char buf[16];
	mq_t *q = create_geo(_i, 2);
	mq_t *other = attach_ok();
	errno = 0;
	ck_assert_int_eq(mq_interrupt(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);

	ck_assert_int_eq(mq_interrupt(q), 0);
	/* Not affected: room, a message, timeout 0. */
	send_text(q, "a");
	expect_text(q, "a");
	EXPECT_ERR(mq_recv(q, buf, sizeof(buf), 0), EAGAIN, "queue empty");
	EXPECT_ERR(mq_recv(other, buf, sizeof(buf), 20), ETIMEDOUT, "still empty");
	/* The next call that would wait: EINTR at once. */
	double t0 = now_ms();
	EXPECT_ERR(mq_recv(q, buf, sizeof(buf), 1000), EINTR, "interrupted");
	ck_assert_msg(now_ms() - t0 < 50, "EINTR after %.0f ms", now_ms() - t0);
	/* Answered: the next wait is a wait. */
	t0 = now_ms();
	EXPECT_ERR(mq_recv(q, buf, sizeof(buf), 30), ETIMEDOUT, "still empty");
	ck_assert_msg(now_ms() - t0 >= 29, "ETIMEDOUT after %.0f ms", now_ms() - t0);

	/* Pending across kinds of calls: a send that would wait for room. */
	send_text(q, "b");
	send_text(q, "c");
	ck_assert_int_eq(mq_interrupt(q), 0);
	t0 = now_ms();
	EXPECT_ERR(mq_send(q, "d", 1, -1), EINTR, "interrupted");
	ck_assert_msg(now_ms() - t0 < 50, "EINTR after %.0f ms", now_ms() - t0);
	EXPECT_ERR(mq_send(q, "d", 1, 20), ETIMEDOUT, "still full");
	/* Two interrupts before a wait: one EINTR answers both. */
	ck_assert_int_eq(mq_interrupt(q), 0);
	ck_assert_int_eq(mq_interrupt(q), 0);
	EXPECT_ERR(mq_send(q, "d", 1, 1000), EINTR, "interrupted");
	EXPECT_ERR(mq_send(q, "d", 1, 20), ETIMEDOUT, "still full");
	expect_text(q, "b");
	expect_text(q, "c");
	ck_assert_uint_eq(stats_of(q).enqueued_total, 3);
	ck_assert_int_eq(mq_detach(other), 0);
	destroy(q);
}
END_TEST

/* Every call blocked on one handle, in any thread, gets EINTR from one
 * mq_interrupt; later calls are not affected. Capacity 1 with its message
 * leased: both empty and full. */
START_TEST(test_interrupt_reaches_every_blocked_thread)
{
	enum call calls[] = {C_RECV,       C_RECV, C_RECV_LEASE, C_PEEK,
	                     C_RECV_BATCH, C_SEND, C_SEND,       C_SEND_BATCH};
	enum { N = sizeof(calls) / sizeof(calls[0]) };
	mq_t *q = create_geo(_i, 1);
	ck_assert_int_eq(mq_set_spin(q, (_i & 2) ? 0 : 1000000), 0); /* asleep, or spinning */
	send_text(q, "held");
	char buf[16];
	mq_lease_t l;
	ck_assert_int_eq(mq_recv_lease(q, buf, sizeof(buf), 0, &l), 4);
	struct bg b[N];
	for (int k = 0; k < N; k++)
		bg_start(&b[k], q, calls[k], -1);
	/* All of them blocked. */
	for (int wait = 0; wait < 200; wait++) {
		struct mq_stats s = stats_of(q);
		if (s.blocked_recvs_total >= 5 && s.blocked_sends_total >= 3)
			break;
		sleep_ms(5);
	}
	sleep_ms(30);
	for (int k = 0; k < N; k++)
		ck_assert_msg(!bg_wait(&b[k], 0), "%s returned before the interrupt: %ld (%s)",
		              call_name(calls[k]), b[k].ret, b[k].detail);
	double at = now_ms();
	ck_assert_int_eq(mq_interrupt(q), 0);
	for (int k = 0; k < N; k++) {
		int done = bg_wait(&b[k], 1000);
		ck_assert_msg(done, "%s (thread %d) not interrupted", call_name(calls[k]), k);
	}
	for (int k = 0; k < N; k++) {
		bg_join(&b[k], NULL);
		ck_assert_msg(b[k].ret == -1 && b[k].err == EINTR,
		              "%s (thread %d): %ld errno %d (%s)", call_name(calls[k]), k, b[k].ret,
		              b[k].err, b[k].detail);
		ck_assert_msg(b[k].returned_at - at < 300, "%s: EINTR %.0f ms after the interrupt",
		              call_name(calls[k]), b[k].returned_at - at);
	}
	/* Answered: later calls wait as usual. */
	EXPECT_ERR(mq_recv(q, buf, sizeof(buf), 20), ETIMEDOUT, "still empty");
	EXPECT_ERR(mq_send(q, "x", 1, 20), ETIMEDOUT, "still full");
	ck_assert_int_eq(mq_ack(q, &l), 0);
	send_text(q, "after");
	expect_text(q, "after");
	ck_assert_uint_eq(stats_of(q).enqueued_total, 2);
	destroy(q);
}
END_TEST

/* Settling calls wait for their lock without a deadline but not past an
 * interrupt: mq_ack, mq_commit, mq_cancel return EINTR and what they were
 * settling stands; called again once the lock is free, they succeed. */
START_TEST(test_settling_calls_interrupted_on_held_lock)
{
	mq_t *q = create_geo(_i, 4);
	unsigned char *raw = raw_map();
	struct holder h = stopped_holder(raw);
	send_text(q, "leased");
	char buf[16];
	mq_lease_t l;
	ck_assert_int_eq(mq_recv_lease(q, buf, sizeof(buf), 0, &l), 6);
	unsigned char *c = mq_reserve(q, 8, 0), *x = mq_reserve(q, 8, 0);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(x);
	memcpy(c, "ok", 2);

	const struct {
		enum call call;
		int side;
	} cases[] = {{C_ACK, 1}, {C_COMMIT, 0}, {C_CANCEL, 1}};
	for (size_t k = 0; k < 3; k++) {
		int side = cases[k].side;
		set_word(raw, lock_off(side), h.token);
		struct bg b = {.lease = l, .buf = cases[k].call == C_COMMIT ? c : x};
		bg_start(&b, q, cases[k].call, -1);
		ck_assert_msg(!bg_wait(&b, 100), "%s returned with the %s lock held: %ld (%s)",
		              call_name(b.call), side_name(side), b.ret, b.detail);
		double at = now_ms();
		ck_assert_int_eq(mq_interrupt(q), 0);
		int done = bg_wait(&b, 1000);
		bg_join(&b, raw);
		ck_assert_msg(done && b.ret == -1 && b.err == EINTR && b.returned_at - at < 100,
		              "%s: %ld errno %d (%s)", call_name(b.call), b.ret, b.err, b.detail);
		char want[64];
		snprintf(want, sizeof(want), "interrupted waiting for the %s lock",
		         side_name(side));
		ck_assert_msg(strstr(b.detail, want), "detail \"%s\"", b.detail);
		set_word(raw, lock_off(side), 0);
	}
	/* What they were settling stands. */
	struct mq_inspection in = inspect_of(q);
	ck_assert_uint_eq(in.chunks_leased, 1);
	ck_assert_uint_eq(in.chunks_writing, 2);
	ck_assert_uint_eq(stats_of(q).in_flight, 1);
	ck_assert_int_eq(mq_ack(q, &l), 0);
	ck_assert_int_eq(mq_commit(q, c, 2), 0);
	ck_assert_int_eq(mq_cancel(q, x), 0);
	expect_text(q, "ok");
	expect_empty(q);
	kill_child(h.pid);
	raw_unmap(raw);
	destroy(q);
}
END_TEST

/* ------------------------------------------------------------- dead holders */

/* The token of a process that died attached, in a lock word (with or without
 * the waiters bit; bit 2 of _i): reported by mq_inspect, taken over by the
 * next call whatever its timeout. The dead holder's intent record, written
 * before it stored anything (bit 3), is rolled back by the taker. */
START_TEST(test_dead_holder_taken_over)
{
	int side = side_of(_i), waiters = (_i & 4) != 0, with_intent = (_i & 8) != 0;
	if (with_intent && (_i & 1) && !side)
		return; /* a LIFO sender records only commits, of a chunk it holds */
	mq_t *q = create_geo(_i, 4);
	unsigned char *raw = raw_map();
	send_text(q, "m1");
	pid_t pid;
	uint32_t token = dead_token(raw, &pid);
	/* FIFO: a send or a take of one message; LIFO: a take to copy out. */
	uint32_t intent_op = side ? ((_i & 1) ? MQ_OP_TAKE_COPY : MQ_OP_TAKE) : MQ_OP_SEND;
	if (with_intent) {
		/* What a holder records before its first store: a send of one
		 * message at tail from fhead, or a take of one from head. */
		struct mq_inspection in = inspect_of(q);
		size_t base = side ? offsetof(struct mq_shm, recv.intent)
		                   : offsetof(struct mq_shm, send.intent);
		uint64_t pos = side ? in.head : in.tail, fpos = side ? in.pool_tail : in.pool_head;
		set_word(raw, base + offsetof(struct mq_intent, n), 1);
		set_word(raw, base + offsetof(struct mq_intent, src), MQ_SRC_RING);
		set_word(raw, base + offsetof(struct mq_intent, idx), 0);
		__atomic_store_n((uint64_t *)(raw + base + offsetof(struct mq_intent, pos)), pos,
		                 __ATOMIC_SEQ_CST);
		__atomic_store_n((uint64_t *)(raw + base + offsetof(struct mq_intent, fpos)), fpos,
		                 __ATOMIC_SEQ_CST);
		set_word(raw, op_off(side), intent_op);
	}
	set_word(raw, lock_off(side), token | (waiters ? MQ_LOCK_WAITERS : 0));
	struct mq_inspection in = inspect_of(q);
	struct mq_lock_info *li = side ? &in.recv_lock : &in.send_lock;
	ck_assert_int_eq(li->holder_pid, pid);
	ck_assert_int_eq(li->holder_alive, 0);
	ck_assert_uint_eq(li->op, with_intent ? intent_op : MQ_OP_NONE);
	ck_assert_int_eq(in.sound, 0);
	ck_assert_msg(strstr(in.problem, "held by a process that is gone"), "mq_inspect: \"%s\"",
	              in.problem);

	uint64_t r0 = repairs(q);
	double t0 = now_ms();
	if (side) {
		expect_text(q, "m1");
	} else {
		ck_assert_msg(mq_send(q, "m2", 2, (_i & 4) ? -1 : 1000) == 0, "mq_send: %s",
		              mq_errdetail());
	}
	ck_assert_msg(now_ms() - t0 < 500, "took the lock over after %.0f ms", now_ms() - t0);
	ck_assert_uint_eq(repairs(q), r0 + 1);
	ck_assert_uint_eq(get_word(raw, lock_off(side)), 0);
	ck_assert_uint_eq(get_word(raw, op_off(side)), MQ_OP_NONE);
	if (!side) {
		expect_text(q, "m1");
		expect_text(q, "m2");
	}
	expect_empty(q);
	struct mq_reaped r;
	ck_assert_int_eq(mq_reap(q, &r, 1, 1000), 1);
	ck_assert_int_eq(r.pid, pid);
	assert_sound(q);
	ck_assert_uint_eq(inspect_of(q).chunks_free, 4);
	raw_unmap(raw);
	destroy(q);
}
END_TEST

/* A consumer killed in the middle of giving a taken chunk back to the pool
 * (FIFO): the take committed (head moved), the chunk's pool position written
 * but not yet its free state (pool_push's first store only). The next holder
 * of the receive lock finishes the push: no chunk leaks. (A leak before:
 * found by prog_chaos --poll.) */
START_TEST(test_dead_consumer_half_pushed_chunk)
{
	mq_t *q = create_geo(0, 4);
	unsigned char *raw = raw_map();
	send_text(q, "m1");
	struct mq_inspection in = inspect_of(q);
	struct mq_shm *s = (struct mq_shm *)raw;
	uint64_t head = in.head, ftail = in.pool_tail;
	uint64_t e = __atomic_load_n(
	        (uint64_t *)(raw + s->ring_offset) + (head & (s->ring_size - 1)), __ATOMIC_SEQ_CST);
	uint32_t idx = (uint32_t)e;
	ck_assert_uint_lt(idx, 4);
	struct mq_chunk *c = (struct mq_chunk *)(raw + s->chunks_offset + idx * s->chunk_size);
	ck_assert_uint_eq(__atomic_load_n((uint64_t *)&c->state, __ATOMIC_SEQ_CST),
	                  MQ_CHUNK_STATE(MQ_CHUNK_QUEUED, 0));
	pid_t pid;
	uint32_t token = dead_token(raw, &pid);
	/* What the dead consumer left: its record, head moved, the push half done. */
	size_t base = offsetof(struct mq_shm, recv.intent);
	set_word(raw, base + offsetof(struct mq_intent, n), 1);
	set_word(raw, base + offsetof(struct mq_intent, src), MQ_SRC_RING);
	__atomic_store_n((uint64_t *)(raw + base + offsetof(struct mq_intent, pos)), head,
	                 __ATOMIC_SEQ_CST);
	__atomic_store_n((uint64_t *)(raw + base + offsetof(struct mq_intent, fpos)), ftail,
	                 __ATOMIC_SEQ_CST);
	set_word(raw, op_off(1), MQ_OP_TAKE);
	__atomic_store_n((uint64_t *)(raw + offsetof(struct mq_shm, head)), head + 1,
	                 __ATOMIC_SEQ_CST);
	__atomic_store_n((uint64_t *)&c->pos, ftail, __ATOMIC_SEQ_CST);
	set_word(raw, lock_off(1), token);

	expect_empty(q); /* takes the receive lock over and repairs */
	ck_assert_uint_eq(get_word(raw, op_off(1)), MQ_OP_NONE);
	in = inspect_of(q);
	ck_assert_msg(in.chunks_free == 4, "chunks free %llu of 4 (queued %llu): the chunk leaked",
	              (unsigned long long)in.chunks_free, (unsigned long long)in.chunks_queued);
	ck_assert_uint_eq(in.pool_tail, ftail + 1);
	/* And all four chunks go round again. */
	for (int k = 0; k < 8; k++) {
		send_text(q, "again");
		expect_text(q, "again");
	}
	ck_assert_int_eq(mq_reap(q, NULL, 0, 1000), 1);
	assert_sound(q);
	raw_unmap(raw);
	destroy(q);
}
END_TEST

/* Self-checking messages for the kill loop: length, sequence, a pattern. */
struct km_head {
	uint32_t len;
	uint32_t seq;
};

static size_t km_make(unsigned char *buf, size_t max, uint32_t seq)
{
	size_t len = sizeof(struct km_head) + (seq * 2654435761u) % (max - sizeof(struct km_head));
	struct km_head h = {(uint32_t)len, seq};
	memcpy(buf, &h, sizeof(h));
	fill(buf + sizeof(h), len - sizeof(h), seq);
	return len;
}

static int km_ok(const unsigned char *buf, size_t len)
{
	struct km_head h;
	if (len < sizeof(h))
		return 0;
	memcpy(&h, buf, sizeof(h));
	return h.len == len && pattern_ok(buf + sizeof(h), len - sizeof(h), h.seq);
}

/* A child producing (mq_send, batches, reserve/commit) or consuming
 * (mq_recv, batches, leases) as fast as it can, until killed. */
static void busy_child(struct chan *ch, size_t max, int producer, uint32_t seed)
{
	mq_t *c = mq_attach(qname);
	if (!c)
		_exit(10);
	unsigned char *buf = malloc(2 * max);
	if (!buf)
		_exit(11);
	chan_say(ch, "A", 1);
	for (uint32_t seq = seed;; seq++) {
		if (producer) {
			size_t len = km_make(buf, max, seq);
			if (seq % 3 == 0) {
				unsigned char *p = mq_reserve(c, len, 100);
				if (p) {
					memcpy(p, buf, len);
					mq_commit(c, p, len);
				}
			} else if (seq % 3 == 1) {
				size_t len2 = km_make(buf + max, max, seq + 1u);
				struct iovec two[2] = {{buf, len}, {buf + max, len2}};
				mq_send_batch(c, two, 2, 100);
			} else {
				mq_send(c, buf, len, 100);
			}
		} else {
			mq_lease_t l;
			if (seq % 3 == 0) {
				ssize_t n = mq_recv_lease(c, buf, max, 100, &l);
				if (n >= 0 && (!km_ok(buf, (size_t)n) || mq_ack(c, &l) != 0))
					_exit(20);
			} else if (seq % 3 == 1) {
				struct iovec two[2] = {{buf, max}, {buf + max, max}};
				int k = mq_recv_batch(c, two, 2, 100);
				for (int j = 0; j < k; j++)
					if (!km_ok(two[j].iov_base, two[j].iov_len))
						_exit(21);
			} else {
				ssize_t n = mq_recv(c, buf, max, 100);
				if (n >= 0 && !km_ok(buf, (size_t)n))
					_exit(22);
			}
		}
	}
}

/* Producers and consumers SIGKILLed at random points, round after round:
 * the queue keeps working, no message is torn, no space leaks, every dead
 * client is found. */
START_TEST(test_sigkilled_busy_clients_never_wedge)
{
	enum { ROUNDS = 15, CAP = 16 };
	size_t max = geo_max_msg(_i) > 4096 ? 16384 : geo_max_msg(_i);
	mq_t *q = create_geo(_i, CAP);
	unsigned char *buf = malloc(geo_max_msg(_i));
	ck_assert_ptr_nonnull(buf);
	unsigned seed = 777u + (unsigned)_i;
	for (int round = 0; round < ROUNDS; round++) {
		pid_t pid[2];
		for (int k = 0; k < 2; k++) {
			struct chan ch;
			chan_open(&ch);
			pid[k] = fork_child();
			if (pid[k] == 0)
				busy_child(&ch, max, k == 0, (uint32_t)round * 1000000u);
			char a;
			ck_assert_int_eq(chan_hear(&ch, &a, 1, 5000), 0);
			chan_close(&ch);
		}
		sleep_ms(1 + (int)(rand_r(&seed) % 8));
		for (int k = 0; k < 2; k++) {
			int st = kill_child(pid[k]);
			ck_assert_msg(st == 1000 + SIGKILL,
			              "round %d: child %d exited with %d (a torn "
			              "message?)",
			              round, k, st);
		}
		/* Drain what is there (every message whole), give back what the
		 * dead held, drain again; then a message goes through. */
		for (int pass = 0; pass < 2; pass++) {
			ssize_t n;
			while ((n = mq_recv(q, buf, geo_max_msg(_i), 0)) >= 0)
				ck_assert_msg(km_ok(buf, (size_t)n),
				              "round %d: a torn message (%zd bytes)", round, n);
			ck_assert_msg(errno == EAGAIN, "round %d: mq_recv: %s", round,
			              mq_errdetail());
			if (pass == 0) {
				int r = mq_reap(q, NULL, 0, 2000);
				ck_assert_msg(r >= 0, "round %d: mq_reap: %s", round,
				              mq_errdetail());
			}
		}
		ck_assert_msg(mq_send(q, "marker", 6, 1000) == 0, "round %d: mq_send: %s", round,
		              mq_errdetail());
		expect_text(q, "marker");
		struct mq_inspection in = inspect_of(q);
		ck_assert_msg(in.sound, "round %d: %s", round, in.problem);
		ck_assert_msg(in.chunks_free == CAP,
		              "round %d: %llu of %d chunks free (writing %llu, "
		              "leased %llu, taking %llu, orphaned %llu)",
		              round, (unsigned long long)in.chunks_free, CAP,
		              (unsigned long long)in.chunks_writing,
		              (unsigned long long)in.chunks_leased,
		              (unsigned long long)in.chunks_taking,
		              (unsigned long long)in.chunks_orphaned);
	}
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.recoveries_total, 2 * ROUNDS);
	ck_assert_uint_eq(s.in_flight, 0);
	ck_assert_uint_eq(s.clients, 1);
	free(buf);
	destroy(q);
}
END_TEST

/* ------------------------------------------------------------ intent records */

/* An operation recorded under a free lock was written by someone who did not
 * hold it. The next lock holder treats it as an operation left unfinished
 * (repair.c): a record that describes what the queue holds is finished and the
 * call succeeds (the queue heals by itself); one that does not fit is
 * reported as damage (EPROTO), whatever the timeout, promptly, and stays for
 * every later call and mq_inspect. Either way nothing queued is lost, and
 * with the record cleared the queue works again. Bit 2 of _i: the op written
 * is the side's own (SEND, TAKE) with the fields of the last real operation,
 * or garbage (99, never fits). */
START_TEST(test_intent_record_scribbled)
{
	int side = side_of(_i);
	uint32_t op = (_i & 4) ? 99u : side ? MQ_OP_TAKE : MQ_OP_SEND;
	mq_t *q = create_geo(_i, 4);
	unsigned char *raw = raw_map();
	send_text(q, "kept");
	set_word(raw, op_off(side), op);

	char want[128];
	snprintf(want, sizeof(want), "damaged: the %s side's record of an unfinished",
	         side_name(side));
	errno = 0;
	long rc0 = side_call(q, side, 0);
	int err0 = errno;
	if (op == 99)
		ck_assert_msg(rc0 == -1 && err0 == EPROTO, "garbage op 99: %ld errno %d (%s)", rc0,
		              err0, mq_errdetail());
	if (rc0 == -1) {
		ck_assert_msg(err0 == EPROTO && strstr(mq_errdetail(), want),
		              "errno %d, detail \"%s\" lacks \"%s\"", err0, mq_errdetail(), want);
		for (int t = 1; t < 3; t++) {
			int timeout = t == 1 ? 200 : -1;
			double t0 = now_ms();
			EXPECT_ERR(side_call(q, side, timeout), EPROTO, want);
			ck_assert_msg(now_ms() - t0 < 500, "EPROTO after %.0f ms", now_ms() - t0);
		}
		struct mq_inspection in = inspect_of(q);
		ck_assert_int_eq(in.sound, 0);
		char problem[128];
		snprintf(problem, sizeof(problem),
		         "the %s side records an operation (%u) but nobody holds its lock",
		         side_name(side), op);
		ck_assert_msg(strstr(in.problem, problem), "mq_inspect: \"%s\"", in.problem);
		ck_assert_uint_eq((side ? in.recv_lock : in.send_lock).word, 0); /* released */
		ck_assert_uint_eq(stats_of(q).depth, 1);
		ck_assert_uint_eq(stats_of(q).enqueued_total, 1);
		set_word(raw, op_off(side), MQ_OP_NONE);
		assert_sound(q);
		send_text(q, "after");
		expect_text(q, "kept");
		expect_text(q, "after");
	} else {
		/* Healed: the record described what had happened (the last send
		 * or take); the call itself went through. */
		ck_assert_int_eq(rc0, side ? 4 : 0);
		assert_sound(q);
		ck_assert_uint_eq(get_word(raw, op_off(side)), MQ_OP_NONE);
		if (side) {
			send_text(q, "after");
			expect_text(q, "after");
		} else {
			send_text(q, "after");
			expect_text(q, "kept");
			expect_text(q, "x");
			expect_text(q, "after");
		}
	}
	expect_empty(q);
	ck_assert_uint_eq(inspect_of(q).chunks_free, 4);
	raw_unmap(raw);
	destroy(q);
}
END_TEST

static Suite *lock_suite(void)
{
	Suite *s = suite_create("lock");
	TCase *tc;

	tc = new_tcase(s, "garbage");
	tcase_add_loop_test(tc, test_garbage_lock_word_taken_over, 0, 8);
	tcase_add_loop_test(tc, test_lock_word_forged_with_own_token_taken_over, 0, 4);

	tc = new_tcase(s, "live_holder");
	tcase_add_loop_test(tc, test_live_holder_timeout_then_killed_holder_taken_over, 0, 4);
	tcase_add_loop_test(tc, test_live_holder_timeout_zero_does_not_block, 0, 4);
	tcase_add_loop_test(tc, test_live_holder_long_spin_respects_timeout, 0, 4);
	tcase_add_loop_test(tc, test_live_client_holding_nothing_taken_over, 0, 4);

	tc = new_tcase(s, "interrupt");
	tcase_add_loop_test(tc, test_signal_handler_interrupt_stops_blocked_call, 0, 16);
	tcase_add_loop_test(tc, test_interrupt_stops_spinning_call, 0, 8);
	tcase_add_loop_test(tc, test_interrupt_pending_semantics, 0, 2);
	tcase_add_loop_test(tc, test_interrupt_reaches_every_blocked_thread, 0, 4);
	tcase_add_loop_test(tc, test_settling_calls_interrupted_on_held_lock, 0, 2);

	tc = new_tcase(s, "dead_holder");
	tcase_add_loop_test(tc, test_dead_holder_taken_over, 0, 16);
	tcase_add_test(tc, test_dead_consumer_half_pushed_chunk);
	tcase_add_loop_test(tc, test_sigkilled_busy_clients_never_wedge, 0, 2);

	tc = new_tcase(s, "intent");
	tcase_add_loop_test(tc, test_intent_record_scribbled, 0, 8);
	return s;
}

int main(void)
{
	return run_suite(lock_suite());
}
