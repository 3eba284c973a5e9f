// The chat page's Image button in headless Chromium (puppeteer-core driving Debian's chromium),
// against `sluice serve --diffusion-model`: the button appears once /v1/models lists an image
// model, a message becomes an image turn with its stats line, the image survives a reload (browser
// storage), and a chat message after it still gets its reply (the image turn is not sent to the
// chat model). Prints one JSON line that tests/cli/serve_cli_test.cc checks.
// Usage: node chat_page_images.mjs PORT CHROMIUM_PATH API_KEY (SLUICE_NPM_DIR: node_modules).
import { createRequire } from "node:module";

const require = createRequire(`${process.env.SLUICE_NPM_DIR}/node_modules/`);
const puppeteer = require("puppeteer-core");

const [port, chromium, key] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: chromium, headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const result = {};
try {
  const page = await browser.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  await page.goto(`http://127.0.0.1:${port}/`, { waitUntil: "load" });
  result.buttonWithoutKey = await page.$eval("#image", (el) => el.classList.contains("available"));
  await page.click("#toggle");
  await page.$eval("#api_key", (el, v) => { el.value = v; el.dispatchEvent(new Event("change")); }, key);
  await page.$eval("#max_tokens", (el) => { el.value = "4"; el.dispatchEvent(new Event("change")); });
  await page.reload({ waitUntil: "load" });
  await page.waitForSelector("#image.available", { timeout: 30000 });
  result.buttonWithKey = true;

  await page.type("#input", "a red cube");
  await page.click("#image");
  await page.waitForFunction(() => {
    const s = document.querySelector(".msg.assistant:last-child .stats");
    return s && s.textContent.length > 0;
  }, { timeout: 120000 });
  result.imageStats = await page.$eval(".msg.assistant:last-child .stats", (el) => el.textContent);
  result.imageWidth = await page.$eval(".msg.assistant:last-child img", (el) => el.naturalWidth).catch(() => 0);

  await page.type("#input", "hello after the image");
  await page.click("#send");
  await page.waitForFunction(() => {
    const msgs = document.querySelectorAll(".msg.assistant");
    const s = msgs.length === 2 && msgs[1].querySelector(".stats");
    return s && s.textContent.length > 0;
  }, { timeout: 120000 });
  result.chatStats = await page.$eval(".msg.assistant:last-child .stats", (el) => el.textContent);

  await page.reload({ waitUntil: "load" });
  result.imagesAfterReload = await page.$$eval(".msg img", (els) => els.length);
  result.pageErrors = pageErrors;
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
