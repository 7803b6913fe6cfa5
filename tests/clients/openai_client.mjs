// Drives Relay with the official `openai` SDK and prints what it got as one
// JSON line, for the e2e tests to check. Usage:
//   RELAY_URL=http://127.0.0.1:PORT/v1 RELAY_KEY=... node openai_client.mjs CMD [MODEL]
// CMD: chat | stream | embed | models | error
import OpenAI from 'openai';

const [cmd, model = 'gpt-5.2'] = process.argv.slice(2);
const client = new OpenAI({
  baseURL: process.env.RELAY_URL,
  apiKey: process.env.RELAY_KEY || 'none',
  maxRetries: 0,
  timeout: 20000,
});

async function main() {
  if (cmd === 'chat') {
    const r = await client.chat.completions.create({
      model, messages: [{ role: 'user', content: 'hello' }],
    });
    return { content: r.choices[0].message.content, model: r.model, usage: r.usage };
  }
  if (cmd === 'stream') {
    const s = await client.chat.completions.create({
      model, stream: true, messages: [{ role: 'user', content: 'hello' }],
    });
    const parts = [];
    let chunks = 0;
    for await (const c of s) {
      chunks++;
      if (c.choices.length && c.choices[0].delta.content) parts.push(c.choices[0].delta.content);
    }
    return { content: parts.join(''), chunks };
  }
  if (cmd === 'embed') {
    const r = await client.embeddings.create({ model, input: 'hello', encoding_format: 'float' });
    return { dims: r.data[0].embedding.length, usage: r.usage };
  }
  if (cmd === 'models') {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    return { ids };
  }
  if (cmd === 'error') {
    try {
      await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] });
      return { error: null };
    } catch (e) {
      return { status: e.status, code: e.code ?? e.error?.code ?? null, message: e.message };
    }
  }
  throw new Error(`unknown command ${cmd}`);
}

main().then(
  (r) => { process.stdout.write(JSON.stringify(r) + '\n'); },
  (e) => { process.stdout.write(JSON.stringify({ thrown: String(e && e.message || e), status: e && e.status }) + '\n'); process.exitCode = 1; },
);
