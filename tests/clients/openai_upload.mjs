// Multipart calls of the official `openai` SDK through Relay (SPEC §9),
// printed as one JSON line for tests/e2e/test_multipart.py. Usage:
//   RELAY_URL=http://127.0.0.1:PORT/v1 RELAY_KEY=... node openai_upload.mjs CMD FILE [MODEL]
// CMD: image_edit (FILE a PNG) | transcribe (FILE a WAV) | file (FILE
// uploaded with purpose "assistants", no model)
import fs from 'node:fs';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';

const [cmd, file, model] = process.argv.slice(2);
const client = new OpenAI({
  baseURL: process.env.RELAY_URL,
  apiKey: process.env.RELAY_KEY || 'none',
  maxRetries: 0,
  timeout: 20000,
});

async function main() {
  if (cmd === 'image_edit') {
    const r = await client.images.edit({
      model,
      image: fs.createReadStream(file),
      prompt: 'make the square blue',
    });
    return { b64: r.data[0].b64_json, usage: r.usage };
  }
  if (cmd === 'transcribe') {
    const r = await client.audio.transcriptions.create({
      model,
      file: await toFile(fs.readFileSync(file), path.basename(file), { type: 'audio/wav' }),
    });
    return { text: r.text, usage: r.usage };
  }
  if (cmd === 'file') {
    const r = await client.files.create({ file: fs.createReadStream(file), purpose: 'assistants' });
    return { id: r.id, object: r.object };
  }
  throw new Error(`unknown command ${cmd}`);
}

main().then(
  (r) => { process.stdout.write(JSON.stringify(r) + '\n'); },
  (e) => { process.stdout.write(JSON.stringify({ thrown: String(e && e.message || e), status: e && e.status }) + '\n'); process.exitCode = 1; },
);
