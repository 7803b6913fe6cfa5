// The pinned `openai` SDK's API-resource calls in the six resources SPEC
// §9 names (chat, completions, embeddings, responses, images, models),
// each once with only its required parameters and once with every
// optional one the SDK types list, in the manner of the SDK's own
// generated tests (those are not in the npm package: see
// tests/e2e/test_surface.py). Run twice, against the provider mock
// directly and through the relay; every request carries x-case (which
// call) and x-run (direct or relay) so the test can pair what reached the
// provider.
//
//   MOCK_URL=... MOCK_KEY=... RELAY_URL=... RELAY_KEY=... node resources.mjs
//
// Output: {"calls":{CASE:{"direct":S,"relay":S}}} where S is what the SDK
// returned (parsed; ids and timestamps dropped: each run makes its own),
// or {"error": status, "code"} when it threw.
import OpenAI from 'openai';

const env = process.env;

// Values a relay could get wrong: unicode and escapes, nested "model"
// members, floats and negative numbers, empty containers.
const tricky = 'caf\u00e9 \u2603 "quoted" \\ back\nslash \ud83d\ude80';
const meta = { model: 'not-the-model', note: tricky, empty: '' };
const fn = {
  name: 'lookup', description: tricky, strict: true,
  parameters: { type: 'object', properties: { model: { type: 'string' } }, required: ['model'],
                additionalProperties: false },
};

const cases = {
  'chat.completions.create:required': (c) => c.chat.completions.create({
    model: 'gpt-5.2', messages: [{ role: 'user', content: 'hi' }] }),
  'chat.completions.create:all': (c) => c.chat.completions.create({
    model: 'gpt-5.2',
    messages: [{ role: 'developer', content: tricky, name: 'dev' },
               { role: 'user', content: [{ type: 'text', text: 'hi' }] }],
    audio: { format: 'wav', voice: 'alloy' }, frequency_penalty: -2, function_call: 'none',
    functions: [{ name: 'f', description: 'd', parameters: {} }], logit_bias: { 50256: -100 },
    logprobs: true, max_completion_tokens: 0, max_tokens: 0, metadata: meta,
    modalities: ['text'], n: 1, parallel_tool_calls: true,
    prediction: { content: 'string', type: 'content' }, presence_penalty: 1.5e-3,
    prompt_cache_key: 'k', prompt_cache_retention: 'in_memory', reasoning_effort: 'low',
    response_format: { type: 'text' }, safety_identifier: 'user-1', seed: -9007199254740991,
    service_tier: 'auto', stop: ['\n\n', 'END'], store: false, temperature: 1,
    tool_choice: 'none', tools: [{ type: 'function', function: fn }], top_logprobs: 0,
    top_p: 1, user: 'user-1', verbosity: 'low',
    web_search_options: { search_context_size: 'low', user_location: null } }),
  'completions.create:required': (c) => c.completions.create({
    model: 'gpt-3.5-turbo-instruct', prompt: 'This is a test.' }),
  'completions.create:all': (c) => c.completions.create({
    model: 'gpt-3.5-turbo-instruct', prompt: [[1212, 318, 257, 1332, 13]], best_of: 0,
    echo: true, frequency_penalty: -2, logit_bias: { 50256: -100 }, logprobs: 0,
    max_tokens: 16, n: 1, presence_penalty: -2, seed: 0, stop: '\n', suffix: tricky,
    temperature: 1, top_p: 1, user: 'user-1' }),
  'embeddings.create:required': (c) => c.embeddings.create({
    model: 'text-embedding-3-small', input: 'The quick brown fox jumped over the lazy dog' }),
  'embeddings.create:all': (c) => c.embeddings.create({
    model: 'text-embedding-3-small', input: ['one', tricky], dimensions: 1,
    encoding_format: 'float', user: 'user-1' }),
  'responses.create:required': (c) => c.responses.create({ model: 'gpt-5.2', store: false }),
  'responses.create:all': (c) => c.responses.create({
    model: 'gpt-5.2', background: false, include: ['message.output_text.logprobs'],
    input: [{ role: 'user', content: [{ type: 'input_text', text: tricky }] }],
    instructions: tricky, max_output_tokens: 0, metadata: meta, parallel_tool_calls: true,
    prompt: { id: 'pmpt_1', variables: { model: 'x' }, version: '2' },
    prompt_cache_key: 'k', prompt_cache_retention: '24h',
    reasoning: { effort: 'low', summary: 'auto' }, safety_identifier: 'user-1',
    service_tier: 'auto', store: false, temperature: 1,
    text: { format: { type: 'text' }, verbosity: 'low' }, tool_choice: 'none',
    tools: [{ type: 'function', ...fn }], top_logprobs: 0, top_p: 1, truncation: 'auto',
    user: 'user-1' }),
  'images.generate:required': (c) => c.images.generate({ model: 'gpt-image-1', prompt: 'a cute baby sea otter' }),
  'images.generate:all': (c) => c.images.generate({
    model: 'gpt-image-1', prompt: tricky, background: 'transparent', moderation: 'low', n: 1,
    output_compression: 100, output_format: 'png', partial_images: 1, quality: 'medium',
    response_format: 'b64_json', size: '1024x1024', style: 'vivid', user: 'user-1' }),
  'models.retrieve': (c) => c.models.retrieve('gpt-5.2'),
  'models.list': async (c) => {
    const ids = [];
    for await (const m of c.models.list()) ids.push(m.id);
    return { ids };
  },
  // each run deletes its own fine-tuned model (the mock forgets it)
  'models.delete': (c, run) => c.models.delete(
    run === 'direct' ? 'ft:gpt-4.1-mini:acme::mock1' : 'ft:gpt-4.1-mini:acme::mock2'),
};

// What a user acts on, without what differs per run.
function strip(v) {
  if (Array.isArray(v)) return v.map(strip);
  if (v && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v).sort()) {
      if (k !== 'id' && k !== 'created' && k !== 'created_at') o[k] = strip(v[k]);
    }
    return o;
  }
  return v;
}

async function run(baseURL, apiKey, name) {
  const out = {};
  for (const [k, f] of Object.entries(cases)) {
    const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000,
                                defaultHeaders: { 'x-case': k, 'x-run': name } });
    try {
      out[k] = strip(await f(client, name));
    } catch (e) {
      out[k] = typeof e?.status === 'number' ? { error: e.status, code: e.code ?? null }
        : { error: 'thrown', message: String(e?.message || e) };
    }
  }
  return out;
}

const direct = await run(env.MOCK_URL, env.MOCK_KEY, 'direct');
const relay = await run(env.RELAY_URL, env.RELAY_KEY, 'relay');
const calls = {};
for (const k of Object.keys(cases)) calls[k] = { direct: direct[k], relay: relay[k] };
process.stdout.write(JSON.stringify({ calls }) + '\n');
