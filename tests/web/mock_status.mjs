// mock_status.mjs - a stand-in broker for working on the dashboard (web/) without mqbroker: serves web/ and a made-up, changing GET /status with many queues, including awkward ones. Not run by ctest.
//
// node tests/web/mock_status.mjs [--port 8099] [--web-root web] [--queues N]
// then open http://127.0.0.1:8099/. The queues: /orders (busy), /payments
// (filling up), /idle (empty, no traffic), /audit log (a space in its name),
// /50%off, /élan, /big (counters above 2^53), /broken ("damaged", with its
// numbers), /foreign ("refused": only name, state and error), then N more
// (default 0) named /q-1 ... for a crowded overview.
// GET /mock/down?s=SECONDS makes /status fail (connection dropped) for that long.

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join, normalize, extname, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({
	options: {
		port: { type: 'string', default: '8099' },
		'web-root': { type: 'string', default: join(here, '..', '..', 'web') },
		queues: { type: 'string', default: '0' },
	},
});
const started = Date.now();
let downUntil = 0;

const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
	'.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

/* queue: a whole element of "queues" for NAME at time T (s), its depth and rates from SHAPE. */
function queue(name, t, shape) {
	const { cap, depth, enq, deq, tiq } = shape(t);
	const enqueued = Math.floor(1000 + t * enq), dequeued = enqueued - depth;
	const p50 = tiq == null ? null : tiq, count = tiq == null ? 0 : Math.round(deq * 60);
	return {
		name, state: 'ok', capacity: cap, max_msg_size: 4096, depth, high_water: Math.max(depth, Math.round(cap * 0.6)),
		enqueued_total: enqueued, dequeued_total: dequeued, bytes_enqueued_total: enqueued * 200, bytes_dequeued_total: dequeued * 200,
		blocked_sends_total: 3, blocked_recvs_total: 40, recoveries_total: 1, in_flight: 0, acked_total: 0, nacked_total: 0, redelivered_total: 0,
		rates: { enqueue_per_s: { '1s': enq, '10s': enq, '60s': enq }, dequeue_per_s: { '1s': deq, '10s': deq, '60s': deq } },
		producers: 1, consumers: 1,
		clients: [{ pid: 4300, role: 'producer', alive: true, sent_total: enqueued, received_total: 0, bytes_sent_total: enqueued * 200, bytes_received_total: 0, in_flight: 0, acked_total: 0, nacked_total: 0, oldest_lease_age_s: 0, attached_unix_s: started / 1000 },
			{ pid: 4301, role: 'consumer', alive: true, sent_total: 0, received_total: dequeued, bytes_sent_total: 0, bytes_received_total: dequeued * 200, in_flight: 0, acked_total: 0, nacked_total: 0, oldest_lease_age_s: 0, attached_unix_s: started / 1000 }],
		clients_attached: 2, full_total: 0, empty_total: 12, lock_repairs_total: 0, broker_pid: process.pid, created_unix_s: started / 1000 - 3600,
		oldest_age_s: depth ? Math.round(depth / Math.max(deq, 0.1) * 1000) / 1000 : 0,
		time_in_queue_s: { p50, p90: p50 == null ? null : p50 * 3, p99: p50 == null ? null : p50 * 9, max: p50 == null ? null : p50 * 14, count },
	};
}

function status() {
	const t = (Date.now() - started) / 1000;
	const wave = (period, lo, hi) => lo + (hi - lo) * (0.5 + 0.5 * Math.sin((2 * Math.PI * t) / period));
	const qs = [
		queue('/orders', t, () => ({ cap: 1024, depth: Math.round(wave(40, 5, 120)), enq: Math.round(wave(17, 80, 140)), deq: Math.round(wave(23, 70, 150)), tiq: wave(30, 0.00004, 0.0009) })),
		queue('/payments', t, () => ({ cap: 256, depth: Math.min(256, Math.round(150 + t * 2) % 257), enq: 12.5, deq: 10, tiq: wave(50, 0.8, 4) })),
		queue('/idle', t, () => ({ cap: 1024, depth: 0, enq: 0, deq: 0, tiq: null })),
		queue('/audit log', t, () => ({ cap: 64, depth: 3, enq: 0.1, deq: 0.1, tiq: 31 })),
		queue('/50%off', t, () => ({ cap: 4096, depth: 1, enq: 1, deq: 1, tiq: 0.002 })),
		queue('/élan', t, () => ({ cap: 16, depth: 15, enq: 2, deq: 1.8, tiq: 200 })),
		queue('/big', t, () => ({ cap: 1024, depth: 2, enq: 1, deq: 1, tiq: 0.00000075 })),
		{ ...queue('/broken', t, () => ({ cap: 1024, depth: 7, enq: 0, deq: 0, tiq: null })), state: 'damaged',
			error: 'slot 17 of /broken has a length of 912345 bytes, over the maximum of 4096: a peer wrote into the segment (mqctl check -q /broken)' },
		{ name: '/foreign', state: 'refused', error: '/dev/shm/foreign is owned by uid 1001 (alice), not by this broker\'s user: refused (see --trust-owner)' },
	];
	for (let i = 1; i <= Number(opt.queues); i++)
		qs.push(queue(`/q-${i}`, t, () => ({ cap: 512, depth: Math.round(wave(20 + i, 0, 50 * (i % 5))), enq: i, deq: i, tiq: 0.001 * i })));
	let text = JSON.stringify({ broker: { version: '0.3.0-mock', pid: process.pid, uptime_s: Math.round(t * 10) / 10 }, queues: qs });
	// Counters past 2^53, as the broker prints them: exact digits.
	text = text.replace(/("name":"\/big".*?"enqueued_total":)\d+/, '$118446744073709551000');
	return [text, qs];
}

createServer(async (req, res) => {
	const url = new URL(req.url, 'http://x');
	const send = (code, type, body) => {
		res.writeHead(code, { 'Content-Type': type, 'Cache-Control': 'no-store' });
		res.end(body);
	};
	if (url.pathname === '/mock/down') {
		downUntil = Date.now() + 1000 * Number(url.searchParams.get('s') || 5);
		return send(200, 'text/plain', 'down\n');
	}
	if (url.pathname === '/status' || url.pathname.startsWith('/status/queues/')) {
		if (Date.now() < downUntil)
			return req.socket.destroy();
		const [text, qs] = status();
		if (url.pathname === '/status')
			return send(200, 'application/json', text);
		const name = '/' + decodeURIComponent(url.pathname.slice('/status/queues/'.length));
		const q = qs.find(x => x.name === name);
		return q ? send(200, 'application/json', JSON.stringify(q)) : send(404, 'application/json', '{"error":"no such queue"}');
	}
	const path = normalize(url.pathname === '/' ? '/index.html' : url.pathname);
	if (path.includes('..') || !types[extname(path)])
		return send(404, 'application/json', '{"error":"not found"}');
	try {
		send(200, types[extname(path)], await readFile(join(opt['web-root'], path)));
	} catch {
		send(404, 'application/json', '{"error":"not found"}');
	}
}).listen(Number(opt.port), '127.0.0.1', () => console.log(`mock broker: http://127.0.0.1:${opt.port}/`));
