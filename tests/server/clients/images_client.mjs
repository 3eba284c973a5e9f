// The official `openai` npm package's images.generate against `sluice serve --diffusion-model`:
// prints one JSON line (the count, the first image's base64 prefix and length, an error's status)
// that tests/cli/serve_cli_test.cc checks. Usage: node images_client.mjs PORT API_KEY
// (SLUICE_NPM_DIR: where node_modules is).
import { createRequire } from "node:module";

const require = createRequire(`${process.env.SLUICE_NPM_DIR}/node_modules/`);
const openai = require("openai");
const OpenAI = openai.OpenAI ?? openai.default ?? openai;

const [port, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey, maxRetries: 0 });
const result = await client.images.generate({
  model: "sd", prompt: "a lighthouse at dusk", n: 2, size: "64x64", response_format: "b64_json",
});
let errorStatus = null;
try {
  await client.images.generate({ prompt: "x", size: "64x64", response_format: "url" });
} catch (e) {
  errorStatus = e.status;
}
console.log(JSON.stringify({
  count: result.data.length,
  prefix: result.data[0].b64_json.slice(0, 11),
  length: result.data[0].b64_json.length,
  differ: result.data[0].b64_json !== result.data[1].b64_json,
  errorStatus,
}));
