// Drives the whole OpenAI surface of issue 15 with the pinned `openai` SDK,
// once against the provider mock directly and once through the relay, and
// prints one JSON line comparing them (tests/e2e/test_surface.py checks it).
// Also lists and retrieves models and counts tokens with `@anthropic-ai/sdk`
// through the relay.
//
//   MOCK_URL=http://127.0.0.1:P/v1 MOCK_KEY=sk-... RELAY_URL=http://127.0.0.1:R/v1 \
//   RELAY_ROOT=http://127.0.0.1:R RELAY_KEY=rk-... PNG=cat.png WAV=hello.wav \
//   node surface.mjs
//
// Output: {"calls":{NAME:{"direct":S,"relay":S}},"consistent":{...},
//          "relay_ids":{...},"anthropic":{...}}
// where S is a summary of what the SDK returned: the answer's shape (keys
// and value types, recursively) and the values a user acts on (status,
// object, deleted, text, ...), or {"error": HTTP status, "code"}. Ids differ
// between the two runs (each run makes its own objects), so they are not in
// S; "consistent" says whether, within each run, every later call saw the
// ids the creates answered.
import fs from 'node:fs';
import OpenAI, { toFile } from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const env = process.env;
const png = fs.readFileSync(env.PNG);
const wav = fs.readFileSync(env.WAV);

// The shape of a value: object keys (sorted) with their shapes, arrays by
// their first element, scalars by type.
function shape(v) {
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return v.length ? [shape(v[0])] : [];
  if (typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v).sort()) o[k] = shape(v[k]);
    return o;
  }
  return typeof v;
}

function pick(v, keys) {
  const o = {};
  for (const k of keys) if (v && v[k] !== undefined) o[k] = v[k];
  return o;
}

async function attempt(fn) {
  try {
    return await fn();
  } catch (e) {
    if (e && typeof e.status === 'number') return { error: e.status, code: e.code ?? null };
    return { error: 'thrown', message: String(e && e.message || e) };
  }
}

async function run(client, fine_tuned) {
  const calls = {};
  const ids = {};
  let consistent = true;
  const check = (ok) => { if (!ok) consistent = false; };

  calls['models.retrieve'] = await attempt(async () => {
    const m = await client.models.retrieve('gpt-5.2');
    return { id: m.id, object: m.object, keys: Object.keys(m).sort() };
  });
  calls['models.list'] = await attempt(async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    return { ids };
  });
  calls['models.delete'] = await attempt(async () => {
    const d = await client.models.delete(fine_tuned);
    check(d.id === fine_tuned);
    return pick(d, ['object', 'deleted']);
  });

  // Responses: a background one polled to completion, its input items, a
  // second one cancelled, the first deleted.
  calls['responses.create'] = await attempt(async () => {
    const r = await client.responses.create({
      model: 'gpt-5.2', input: 'write a haiku about relays', background: true });
    ids.response = r.id;
    return { shape: shape(r), ...pick(r, ['object', 'status', 'background', 'store']) };
  });
  calls['responses.retrieve'] = await attempt(async () => {
    const statuses = [];
    let r;
    for (let i = 0; i < 10; i++) {
      r = await client.responses.retrieve(ids.response);
      check(r.id === ids.response);
      statuses.push(r.status);
      if (r.status !== 'queued' && r.status !== 'in_progress') break;
    }
    return { statuses, shape: shape(r), usage: r.usage, text: r.output_text };
  });
  calls['responses.inputItems.list'] = await attempt(async () => {
    const items = [];
    for await (const it of client.responses.inputItems.list(ids.response)) items.push(it);
    return { n: items.length, first: pick(items[0], ['type', 'role', 'content']) };
  });
  calls['responses.cancel'] = await attempt(async () => {
    const r = await client.responses.create({
      model: 'gpt-5.2', input: 'never mind', background: true });
    ids.cancelled = r.id;
    const c = await client.responses.cancel(r.id);
    check(c.id === r.id);
    return pick(c, ['object', 'status', 'usage']);
  });
  calls['responses.delete'] = await attempt(async () => {
    const d = await client.responses.delete(ids.response);
    const after = await attempt(() => client.responses.retrieve(ids.response));
    return { returned: d === undefined ? 'undefined' : shape(d), after: after.error ?? 'found' };
  });

  // Stored chat completions.
  calls['chat.completions.create'] = await attempt(async () => {
    const c = await client.chat.completions.create({
      model: 'gpt-5.2', store: true, metadata: { topic: 'surface' },
      messages: [{ role: 'user', content: 'hello there' }] });
    ids.chat = c.id;
    return { shape: shape(c), content: c.choices[0].message.content, usage: c.usage };
  });
  calls['chat.completions.retrieve'] = await attempt(async () => {
    const c = await client.chat.completions.retrieve(ids.chat);
    check(c.id === ids.chat);
    return { shape: shape(c), metadata: c.metadata };
  });
  calls['chat.completions.list'] = await attempt(async () => {
    const page = await client.chat.completions.list({ limit: 100 });
    return { object: page.body?.object ?? 'list', kinds: [...new Set(page.data.map((c) => c.object))] };
  });
  calls['chat.completions.update'] = await attempt(async () => {
    const c = await client.chat.completions.update(ids.chat, { metadata: { topic: 'updated' } });
    check(c.id === ids.chat);
    return { metadata: c.metadata };
  });
  calls['chat.completions.messages.list'] = await attempt(async () => {
    const msgs = [];
    for await (const m of client.chat.completions.messages.list(ids.chat)) msgs.push(m);
    return { msgs: msgs.map((m) => pick(m, ['role', 'content'])) };
  });
  calls['chat.completions.delete'] = await attempt(async () => {
    const d = await client.chat.completions.delete(ids.chat);
    check(d.id === ids.chat);
    return pick(d, ['object', 'deleted']);
  });

  // Calls charged by model.
  calls['embeddings.create'] = await attempt(async () => {
    const e = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello' });
    return { embedding: Array.from(e.data[0].embedding), usage: e.usage };
  });
  calls['completions.create'] = await attempt(async () => {
    const c = await client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'say hi' });
    return { text: c.choices[0].text, usage: c.usage };
  });
  calls['images.generate'] = await attempt(async () => {
    const i = await client.images.generate({ model: 'gpt-image-1', prompt: 'a relay race' });
    return { b64: i.data[0].b64_json, usage: i.usage };
  });

  // Objects made without a model.
  calls['vectorStores.create'] = await attempt(async () => {
    const v = await client.vectorStores.create({ name: 'docs' });
    ids.vector_store = v.id;
    return { shape: shape(v), ...pick(v, ['object', 'name', 'status']) };
  });
  calls['vectorStores.retrieve'] = await attempt(async () => {
    const v = await client.vectorStores.retrieve(ids.vector_store);
    check(v.id === ids.vector_store);
    return pick(v, ['object', 'name', 'status']);
  });

  // Streams, as the SDK assembles them from the events.
  calls['chat.completions.create(stream)'] = await attempt(async () => {
    const s = await client.chat.completions.create({
      model: 'gpt-5.2', stream: true, messages: [{ role: 'user', content: 'stream please' }] });
    let text = '';
    const kinds = [];
    for await (const c of s) {
      kinds.push(c.choices.length ? 'choice' : 'usage');
      text += c.choices[0]?.delta?.content ?? '';
    }
    return { text, kinds };
  });
  calls['completions.create(stream)'] = await attempt(async () => {
    const s = await client.completions.create({
      model: 'gpt-3.5-turbo-instruct', prompt: 'say hi', stream: true,
      stream_options: { include_usage: true } });
    let text = '';
    let usage = null;
    for await (const c of s) {
      text += c.choices[0]?.text ?? '';
      if (c.usage) usage = c.usage;
    }
    return { text, usage };
  });
  calls['responses.create(stream)'] = await attempt(async () => {
    const s = await client.responses.create({ model: 'gpt-5.2', input: 'stream it', stream: true });
    const types = [];
    let done;
    for await (const e of s) {
      types.push(e.type);
      if (e.type === 'response.completed') done = e.response;
    }
    ids.streamed = done.id;
    return { types, status: done.status, usage: done.usage, shape: shape(done) };
  });
  calls['responses.retrieve(stream)'] = await attempt(async () => {
    const s = await client.responses.retrieve(ids.streamed, { stream: true });
    const types = [];
    for await (const e of s) {
      types.push(e.type);
      if (e.type === 'response.completed') check(e.response.id === ids.streamed);
    }
    return { types };
  });
  // Counting and compacting continue the streamed response.
  calls['responses.inputTokens.count'] = await attempt(async () => {
    const c = await client.responses.inputTokens.count({
      model: 'gpt-5.2', input: 'and how many now?', previous_response_id: ids.streamed });
    return pick(c, ['object', 'input_tokens']);
  });
  calls['responses.compact'] = await attempt(async () => {
    const c = await client.responses.compact({
      model: 'gpt-5.2', input: 'keep it short', previous_response_id: ids.streamed });
    return { object: c.object, types: c.output.map((o) => o.type), usage: c.usage };
  });

  // Multipart uploads (issue 15: images.edit with a real PNG,
  // audio.transcriptions.create with a WAV, files.create).
  calls['files.create'] = await attempt(async () => {
    const f = await client.files.create({
      file: await toFile(Buffer.from('{"prompt":"hi"}\n'), 'notes.jsonl'), purpose: 'assistants' });
    ids.uploaded = f.id;
    return { shape: shape(f), ...pick(f, ['object', 'bytes', 'filename', 'purpose']) };
  });
  calls['images.edit'] = await attempt(async () => {
    const i = await client.images.edit({
      model: 'gpt-image-1', prompt: 'add a hat',
      image: await toFile(png, 'cat.png', { type: 'image/png' }) });
    return { b64: i.data[0].b64_json, usage: i.usage };
  });
  calls['audio.transcriptions.create'] = await attempt(async () => {
    const t = await client.audio.transcriptions.create({
      model: 'gpt-4o-transcribe', file: await toFile(wav, 'hello.wav', { type: 'audio/wav' }) });
    return { text: t.text, usage: t.usage };
  });
  return { calls, ids, consistent: () => consistent, check };
}

// Files: listed, retrieved and deleted. The file is made at the provider
// directly (as by any tool outside the relay) and reached by passthrough.
async function files(client, fileId, check) {
  const calls = {};
  calls['files.list'] = await attempt(async () => {
    const page = await client.files.list();
    return { object: page.body?.object ?? 'list', n: page.data.length };
  });
  calls['files.retrieve'] = await attempt(async () => {
    const f = await client.files.retrieve(fileId);
    check(f.id === fileId);
    return { shape: shape(f), ...pick(f, ['object', 'bytes', 'filename', 'purpose']) };
  });
  calls['files.delete'] = await attempt(async () => {
    const d = await client.files.delete(fileId);
    check(d.id === fileId);
    return pick(d, ['object', 'deleted']);
  });
  return calls;
}

async function main() {
  const opts = { maxRetries: 0, timeout: 20000 };
  const direct = new OpenAI({ baseURL: env.MOCK_URL, apiKey: env.MOCK_KEY, ...opts });
  const relay = new OpenAI({ baseURL: env.RELAY_URL, apiKey: env.RELAY_KEY, ...opts });
  const outside = async () => (await direct.files.create({
    file: await toFile(Buffer.from('made outside the relay\n'), 'outside.txt'),
    purpose: 'assistants' })).id;

  const d = await run(direct, 'ft:gpt-4.1-mini:acme::mock1');
  Object.assign(d.calls, await files(direct, await outside(), d.check));
  const r = await run(relay, 'ft:gpt-4.1-mini:acme::mock2');
  Object.assign(r.calls, await files(relay, await outside(), r.check));

  const calls = {};
  for (const k of Object.keys(d.calls)) calls[k] = { direct: d.calls[k], relay: r.calls[k] };

  const anthropic = new Anthropic({ baseURL: env.RELAY_ROOT, apiKey: env.RELAY_KEY, maxRetries: 0 });
  const ids = [];
  for await (const m of anthropic.models.list()) ids.push(m.id);
  const one = await anthropic.models.retrieve('claude-3-5-sonnet');
  const counted = await anthropic.messages.countTokens({
    model: 'claude-3-5-sonnet', messages: [{ role: 'user', content: 'how many tokens is this?' }] });

  return {
    calls,
    consistent: { direct: d.consistent(), relay: r.consistent() },
    relay_ids: r.ids,
    anthropic: { ids, retrieve: { type: one.type, id: one.id, display_name: one.display_name,
                                  created_at: one.created_at },
                 count_tokens: counted },
  };
}

main().then(
  (r) => { process.stdout.write(JSON.stringify(r) + '\n'); },
  (e) => {
    process.stdout.write(JSON.stringify({ thrown: String(e && e.stack || e), status: e && e.status }) + '\n');
    process.exitCode = 1;
  },
);
