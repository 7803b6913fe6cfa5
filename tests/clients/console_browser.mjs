// Drives the developer console (GET /) in Debian's Chromium with the pinned
// playwright-core, for tests/e2e/test_console.py, which makes the
// assertions. Reads one JSON plan (argv[2]) and prints one JSON line: what
// the page rendered at each width (innerText and the parts of it the test
// reads), every request it made, its storage and cookies.
//
// Plan: {url, widths: [1280, 360 or {width, <any of the below>}], key?, wrong_key?, forget?,
//        stubs?: {"/path?query": {status, body}},      served instead of the relay
//        wallet_extra?: ',"overdraft":"100.00"',       appended to /v1/wallet
//        shots: "build/console/name"}                  -> name-<width>.png
// Any request for another origin is aborted and reported (foreign).
import { chromium } from 'playwright-core';

const PLAN = JSON.parse(process.argv[2]);
const origin = new URL(PLAN.url).origin;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

// Collected in the page: the rendered text and the console's parts.
function observe(key) {
	const q = (s) => [...document.querySelectorAll(s)];
	const txt = (e) => (e ? e.innerText.trim() : null);
	const de = document.documentElement;
	const wide = q('body *').filter((e) => e.getBoundingClientRect().right > de.clientWidth + 0.5)
		.map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className : ''));
	const local = {}, session = {};
	for (let i = 0; i < localStorage.length; i++) local[localStorage.key(i)] = localStorage.getItem(localStorage.key(i));
	for (let i = 0; i < sessionStorage.length; i++) session[sessionStorage.key(i)] = sessionStorage.getItem(sessionStorage.key(i));
	return {
		text: document.body.innerText,
		title: document.title,
		live: txt(document.getElementById('live')),
		headings: q('h2').map(txt),
		families: q('#families h3').map(txt),
		catalog: q('#families table').map((t) => ({
			family: txt(t.previousElementSibling),
			head: [...t.tHead.rows[0].cells].map(txt),
			rows: [...t.tBodies[0].rows].map((r) => ({
				alias: txt(r.querySelector('.alias')),
				modality: txt(r.querySelector('.tag')),
				input: txt(r.cells[1]),
				output: txt(r.cells[2]),
			})),
		})),
		routing: txt(document.querySelector('section[aria-labelledby=h-routing]')),
		err: txt(document.getElementById('err')),
		mine_hidden: document.getElementById('mine').hidden,
		wallet: q('#wallet .card').map((c) => ({ label: txt(c.querySelector('dt')), value: txt(c.querySelector('dd')) })),
		usage_hidden: document.getElementById('usage').hidden,
		usage_note: txt(document.getElementById('usage-note')),
		usage_head: q('#usage thead th').map((e) => e.textContent.trim()),
		usage_rows: q('#usage tbody tr').map((r) => [...r.cells].map(txt)),
		usage_labels: q('#usage tbody tr:first-child td').map((e) => e.getAttribute('data-l')),
		usage_row_display: (() => { const r = document.querySelector('#usage tbody tr'); return r ? getComputedStyle(r).display : null; })(),
		recent_heading: txt(document.getElementById('h-recent')),
		svg: q('#chart svg').length,
		bars: q('#chart svg rect.bar').map((r) => ({ day: r.getAttribute('data-day'), h: +r.getAttribute('height'), cls: r.getAttribute('class'), title: r.textContent })),
		chart_peak: txt(document.querySelector('#chart .peak')),
		chart_labels: q('#chart .axis span').map(txt),
		chart_width: (() => { const s = document.querySelector('#chart svg'); return s ? s.getBoundingClientRect().width : 0; })(),
		chartsum: txt(document.getElementById('chartsum')),
		key_value: document.getElementById('key').value,
		key_type: document.getElementById('key').type,
		key_in_html: key ? de.outerHTML.includes(key) : false,
		key_in_text: key ? document.body.innerText.includes(key) : false,
		href: location.href,
		local, session, cookie: document.cookie,
		scroll_width: de.scrollWidth, body_scroll_width: document.body.scrollWidth,
		client_width: de.clientWidth, inner_width: window.innerWidth,
		too_wide: wide.slice(0, 20),
	};
}

async function run(browser, w) {
	// A width, or {width, ...}: this run's own stubs, wallet_extra, shots.
	const plan = typeof w === 'number' ? { ...PLAN, width: w } : { ...PLAN, ...w };
	const width = plan.width;
	const ctx = await browser.newContext({ viewport: { width, height: 900 }, deviceScaleFactor: 1 });
	const out = { width, requests: [], foreign: [], errors: [] };
	// Generous: CI machines run other suites beside this one.
	ctx.setDefaultTimeout(60000);
	await ctx.route('**/*', async (route) => {
		const req = route.request();
		const u = new URL(req.url());
		const auth = req.headers()['authorization'] || null;
		out.requests.push({ method: req.method(), url: req.url(), path: u.pathname + u.search, auth });
		if (u.origin !== origin) {
			out.foreign.push(req.url());
			return route.abort('blockedbyclient');
		}
		const stub = plan.stubs && plan.stubs[u.pathname + u.search];
		if (stub) {
			return route.fulfill({ status: stub.status || 200, contentType: 'application/json', body: stub.body });
		}
		if (plan.wallet_extra && u.pathname === '/v1/wallet') {
			const resp = await route.fetch();
			let body = await resp.text();
			if (resp.status() === 200) body = body.replace(/\}\s*$/, plan.wallet_extra + '}\n');
			return route.fulfill({ response: resp, body });
		}
		return route.continue();
	});
	const page = await ctx.newPage();
	page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.errors.push(m.type() + ': ' + m.text()); });
	page.on('pageerror', (e) => out.errors.push('pageerror: ' + e.message));
	await page.goto(plan.url, { waitUntil: 'load' });
	await page.waitForFunction(() => /models? live|unavailable/.test(document.getElementById('live').textContent));
	out.catalog_only = await page.evaluate(observe, null);
	if (plan.wrong_key) {
		await page.fill('#key', plan.wrong_key);
		await page.click('#go');
		await page.waitForFunction(() => { const t = document.getElementById('err').textContent; return t && !/^Loading/.test(t); });
		out.wrong = await page.evaluate(observe, plan.wrong_key);
	}
	if (plan.key) {
		await page.fill('#key', plan.key);
		// The button at one width, the Enter key at the other.
		if (width >= 600) await page.click('#go');
		else await page.press('#key', 'Enter');
		await page.waitForFunction(() => {
			const err = document.getElementById('err').textContent;
			return (err && !/^Loading/.test(err)) || (!err && !document.getElementById('mine').hidden &&
				(document.getElementById('chartsum').textContent || document.getElementById('usage-note').textContent));
		});
	}
	await page.screenshot({ path: `${plan.shots}-${width}.png`, fullPage: true });
	out.shot = `${plan.shots}-${width}.png`;
	out.obs = await page.evaluate(observe, plan.key || null);
	out.cookies = await ctx.cookies();
	if (plan.forget) {
		await page.click('#forget');
		out.forgotten = await page.evaluate(observe, plan.key);
	}
	await ctx.close();
	return out;
}

const result = { runs: [], error: null };
let browser;
try {
	browser = await chromium.launch({
		executablePath,
		headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync'],
	});
	result.browser = browser.version();
	for (const w of PLAN.widths) result.runs.push(await run(browser, w));
} catch (e) {
	result.error = String(e && e.stack || e);
} finally {
	if (browser) await browser.close();
}
console.log(JSON.stringify(result));
