// format.js - the dashboard's number and time formats, its two DOM setters and two readers of /status values, shared by the overview (overview.js) and the queue view (queue.js).

export const rateFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2, useGrouping: false });
const sig3 = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3, useGrouping: false });
const plain = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2, useGrouping: false });

/* num: V (a /status value: number, BigInt or absent) as a Number, or null when it is not a number. */
export function num(v) {
	if (typeof v === 'number')
		return Number.isFinite(v) ? v : null;
	if (typeof v === 'bigint')
		return Number(v);
	return null;
}

/* setText: EL's text, only touched when it changes. */
export function setText(el, text) {
	if (el && el.textContent !== text)
		el.textContent = text;
}

/*
 * setNum: EL shows the whole number V exactly ("1234567", never "1.2M"), or
 * "—" when V is absent; groups of three digits are set apart by CSS margins
 * on spans (unless GROUP is false, as for pids), so the text content stays
 * the plain digits. data-value holds the same digits.
 */
export function setNum(el, v, group = true) {
	if (!el)
		return;
	const s = typeof v === 'number' || typeof v === 'bigint' ? String(v) : '—';
	if (el.dataset.value === s && el.childNodes.length)
		return;
	el.dataset.value = s;
	el.textContent = '';
	if (!group || !/^\d{5,}$/.test(s)) {
		el.textContent = s;
		return;
	}
	const head = s.length % 3 || 3;
	el.append(s.slice(0, head));
	for (let i = head; i < s.length; i += 3) {
		const g = document.createElement('span');
		g.className = 'g';
		g.textContent = s.slice(i, i + 3);
		el.append(g);
	}
}

/* rate: a msgs/s value as text ("12.5"), "—" when absent. */
export function rate(v) {
	return typeof v === 'number' && Number.isFinite(v) ? rateFmt.format(v) : '—';
}

/* humanBytes: a byte count in binary units, for the hint beside the exact number. */
export function humanBytes(n) {
	n = Number(n);
	const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
	let i = -1;
	do {
		n /= 1024;
		i++;
	} while (n >= 1024 && i < units.length - 1);
	return `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

/* duration: seconds as "42s", "3m 07s", "5h 02m 09s" or "12d 4h 05m". */
export function duration(s) {
	s = Math.max(0, Math.floor(Number(s) || 0));
	const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, sec = s % 60;
	const p = n => String(n).padStart(2, '0');
	if (d)
		return `${d}d ${h}h ${p(m)}m`;
	if (h)
		return `${h}h ${p(m)}m ${p(sec)}s`;
	if (m)
		return `${m}m ${p(sec)}s`;
	return `${sec}s`;
}

/*
 * seconds: a span of time in seconds (time in queue, a message's age) as
 * short text with the unit that suits it: "850 ns", "12.3 µs", "4.5 ms",
 * "2.35 s", "3m 07s"; "—" when absent (a percentile of no messages is null).
 */
export function seconds(s) {
	if (typeof s !== 'number' || !Number.isFinite(s))
		return '—';
	if (s === 0)
		return '0 s';
	if (s < 1e-6)
		return `${sig3.format(s * 1e9)} ns`;
	if (s < 1e-3)
		return `${sig3.format(s * 1e6)} µs`;
	if (s < 1)
		return `${sig3.format(s * 1e3)} ms`;
	if (s < 60)
		return `${sig3.format(s)} s`;
	return duration(s);
}

/*
 * timeUnit: the unit for the y ticks of a time axis (a TimeChart yUnit) whose
 * largest value is MAX seconds: {per: seconds in one, label: n -> "n ms"}.
 */
export function timeUnit(max) {
	const [per, name] = max < 2e-6 ? [1e-9, 'ns'] : max < 2e-3 ? [1e-6, 'µs'] : max < 2 ? [1e-3, 'ms']
		: max < 180 ? [1, 's'] : max < 3 * 3600 ? [60, 'min'] : [3600, 'h'];
	return { per, label: n => (n === 0 ? '0' : `${plain.format(n)} ${name}`) };
}

/* clock: a Date as local "HH:MM:SS", with the date in front when it is not today. */
export function clock(date) {
	const p = n => String(n).padStart(2, '0');
	const t = `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`;
	const today = new Date();
	if (date.toDateString() === today.toDateString())
		return t;
	return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())} ${t}`;
}

/* fillPct: the share FRAC (0..1) of a queue's capacity as "42% full", "1.6% full", "<0.1% full". */
export function fillPct(frac) {
	const pct = frac * 100;
	return `${pct === 0 || pct >= 10 ? Math.round(pct) : pct < 0.1 ? '<0.1' : pct.toFixed(1)}% full`;
}

/* level: how full a queue at FRAC of its capacity looks: "ok", "high" (70%) or "full" (90%). */
export function level(frac) {
	return frac >= 0.9 ? 'full' : frac >= 0.7 ? 'high' : 'ok';
}

/*
 * rates: Q's rates in direction DIR ("enqueue" or "dequeue") as {"1s", "10s",
 * "60s"}: from "rates": {"enqueue_per_s": ...} (what the broker serves), or
 * from "enqueue_rate" should a broker serve that instead; {} when neither.
 */
export function rates(q, dir) {
	const r = q.rates && q.rates[`${dir}_per_s`];
	if (r && typeof r === 'object')
		return r;
	const alt = q[`${dir}_rate`];
	return alt && typeof alt === 'object' ? alt : {};
}

/* oldest: how long Q's oldest waiting message has waited, as text ("none" when the queue is empty). */
export function oldest(q) {
	const age = num(q.oldest_age_s);
	if (age == null)
		return '—';
	if (age === 0 && num(q.depth) === 0)
		return 'none';
	return seconds(age);
}
