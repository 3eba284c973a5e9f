// The official `openai` npm package against `sluice serve`: a whole and a streamed chat
// completion, the model list and an error. Prints one JSON line that tests/cli/serve_cli_test.cc
// checks. Usage: node openai_client.mjs PORT API_KEY (SLUICE_NPM_DIR: where node_modules is).
import { createRequire } from "node:module";

const require = createRequire(`${process.env.SLUICE_NPM_DIR}/node_modules/`);
const openai = require("openai");
const OpenAI = openai.OpenAI ?? openai.default ?? openai;

const [port, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey, maxRetries: 0 });
const messages = [{ role: "user", content: "hello from node" }];

const whole = await client.chat.completions.create({
  model: "test", messages, max_tokens: 16, temperature: 0,
});
let streamed = "";
let finish = null;
let usage = null;
const stream = await client.chat.completions.create({
  model: "test", messages, max_tokens: 16, temperature: 0, stream: true,
  stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  if (chunk.choices.length > 0) {
    streamed += chunk.choices[0].delta.content ?? "";
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  if (chunk.usage) usage = chunk.usage;
}
const models = await client.models.list();
let errorStatus = null;
let errorMessage = null;
try {
  await client.chat.completions.create({ model: "test", messages: [], max_tokens: 1 });
} catch (e) {
  errorStatus = e.status;
  errorMessage = e.error?.message ?? e.message;
}
let unauthorized = null;
try {
  const bad = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "wrong", maxRetries: 0 });
  await bad.models.list();
} catch (e) {
  unauthorized = e.status;
}
console.log(JSON.stringify({
  whole: whole.choices[0].message.content,
  whole_finish: whole.choices[0].finish_reason,
  completion_tokens: whole.usage.completion_tokens,
  streamed, finish, usage,
  models: models.data.map((m) => m.id),
  errorStatus, errorMessage, unauthorized,
}));
