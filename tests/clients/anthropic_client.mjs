// Drives Relay with the official `@anthropic-ai/sdk` and prints what it got as
// one JSON line, for the e2e tests to check. Usage:
//   RELAY_BASE=http://127.0.0.1:PORT RELAY_KEY=... node anthropic_client.mjs CMD [MODEL]
// CMD: message | stream | error
// (The SDK appends /v1/messages to its base URL itself.)
import Anthropic from '@anthropic-ai/sdk';

const [cmd, model = 'claude-3-5-sonnet'] = process.argv.slice(2);
const client = new Anthropic({
  baseURL: process.env.RELAY_BASE,
  apiKey: process.env.RELAY_KEY || 'none',
  maxRetries: 0,
  timeout: 20000,
});
const ask = { model, max_tokens: 64, messages: [{ role: 'user', content: 'hello' }] };

async function main() {
  if (cmd === 'message') {
    const r = await client.messages.create(ask);
    return { text: r.content[0].text, model: r.model, usage: r.usage, stop: r.stop_reason };
  }
  if (cmd === 'stream') {
    const s = client.messages.stream(ask);
    const parts = [];
    s.on('text', (t) => parts.push(t));
    const final = await s.finalMessage();
    return { text: parts.join(''), usage: final.usage, stop: final.stop_reason };
  }
  if (cmd === 'error') {
    try {
      await client.messages.create(ask);
      return { error: null };
    } catch (e) {
      return { status: e.status, name: e.constructor.name, type: e.type, apiMessage: e.apiMessage };
    }
  }
  throw new Error(`unknown command ${cmd}`);
}

main().then(
  (r) => { process.stdout.write(JSON.stringify(r) + '\n'); },
  (e) => { process.stdout.write(JSON.stringify({ thrown: String(e && e.message || e), status: e && e.status }) + '\n'); process.exitCode = 1; },
);
