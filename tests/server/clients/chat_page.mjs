// The chat page of `sluice serve` in headless Chromium (puppeteer-core driving Debian's
// chromium): type a message, see streamed tokens arrive, press Stop, see the reply marked stopped;
// the conversation survives a reload (browser storage); a short second turn ends with its stats
// line. Prints one JSON line that tests/cli/serve_cli_test.cc checks.
// Usage: node chat_page.mjs PORT CHROMIUM_PATH (SLUICE_NPM_DIR: where node_modules is).
import { createRequire } from "node:module";

const require = createRequire(`${process.env.SLUICE_NPM_DIR}/node_modules/`);
const puppeteer = require("puppeteer-core");

const [port, chromium] = process.argv.slice(2);
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
  const setField = (id, value) => page.$eval(id, (el, v) => {
    el.value = v;
    el.dispatchEvent(new Event("change"));
  }, value);
  await page.click("#toggle");  // the settings panel
  await setField("#max_tokens", "4000");
  await setField("#temperature", "0");

  await page.type("#input", "hello page");
  const sent = Date.now();
  await page.click("#send");
  const replyText = () => page.$eval(".msg.assistant:last-child .text", (el) => el.textContent.length);
  await page.waitForFunction(() => {
    const t = document.querySelector(".msg.assistant:last-child .text");
    return t && t.textContent.length > 0;
  }, { timeout: 60000, polling: 5 });
  const first = await replyText();
  await page.waitForFunction((n) =>
    document.querySelector(".msg.assistant:last-child .text").textContent.length > n,
  { timeout: 60000, polling: 5 }, first);
  result.grew = (await replyText()) > first;
  result.stopEnabledWhileStreaming = await page.$eval("#stop", (el) => !el.disabled);
  await page.click("#stop");
  await page.waitForFunction(() => {
    const s = document.querySelector(".msg.assistant:last-child .stats");
    return s && s.textContent.length > 0;
  }, { timeout: 30000 });
  result.stoppedAfterMs = Date.now() - sent;
  result.afterStop = await page.$eval(".msg.assistant:last-child .stats", (el) => el.textContent);
  result.sendEnabledAfterStop = await page.$eval("#send", (el) => !el.disabled);

  await page.reload({ waitUntil: "load" });
  result.conversations = await page.$$eval("#conversations div", (els) => els.map((e) => e.textContent));
  result.messagesAfterReload = await page.$$eval(".msg", (els) => els.length);

  // A new conversation (the stopped reply may be thousands of tokens of noise: too long to
  // resend), ended by its token limit: its stats line.
  await page.click("#new");
  await setField("#max_tokens", "8");
  await page.type("#input", "a short one");
  await page.click("#send");
  await page.waitForFunction(() => {
    const msgs = document.querySelectorAll(".msg.assistant");
    const s = msgs.length === 1 && msgs[0].querySelector(".stats");
    return s && s.textContent.length > 0;
  }, { timeout: 60000 });
  result.secondStats = await page.$eval(".msg.assistant:last-child .stats", (el) => el.textContent);
  result.conversationsAtEnd = await page.$$eval("#conversations div", (els) => els.length);
  result.pageErrors = pageErrors;
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
