// `sluice serve` as users meet it, with real clients: curl, the official `openai` npm package
// on Node.js, and the chat page in headless Chromium (puppeteer-core). Each client is skipped,
// with the reason, where it is missing (./test.sh installs curl, chromium and the npm packages;
// the npm ones go to .cache/npm, scripts/test-clients.sh). Ctrl-C stops the server with exit status
// 0.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/cli/subprocess.h"
#include "tests/support/test_model.h"

namespace sluice::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;

constexpr char kApiKey[] = "test-key";

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs a shell command (bounded by timeout(1)), collecting its output.
CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  FILE* pipe = popen(("timeout 300 " + command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// The executable `name` on PATH, or "".
std::string FindCommand(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}
bool HaveCommand(const std::string& name) { return !FindCommand(name).empty(); }

std::string NpmDir() { return std::string(SLUICE_SOURCE_DIR) + "/.cache/npm"; }
bool HaveNpmPackage(const std::string& name) {
  return std::filesystem::exists(NpmDir() + "/node_modules/" + name + "/package.json");
}
std::string ClientScript(const std::string& name) {
  return std::string(SLUICE_SOURCE_DIR) + "/tests/server/clients/" + name;
}

// The last line of the output that parses as a JSON object.
json LastJsonLine(const std::string& output) {
  size_t end = output.size();
  while (end > 0) {
    size_t start = output.rfind('\n', end - 1);
    start = start == std::string::npos ? 0 : start + 1;
    json j = json::parse(output.substr(start, end - start), nullptr, false);
    if (j.is_object()) return j;
    if (start == 0) break;
    end = start - 1;
  }
  return json();
}

class ServeCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = dir_.File("test.gguf");
    Status written = WriteTestModel(model_);
    ASSERT_TRUE(written.ok()) << written.ToString();
  }
  // Starts the server on a free port and returns it (0 on failure).
  int Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"serve",  "-m",         model_,      "--port", "0",
                                     "--temp", "0",          "--threads", "1",      "--api-key",
                                     kApiKey,  "--parallel", "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<PtyProcess>(args);
    if (!server_->started()) return 0;
    const std::string marker = "on http://127.0.0.1:";
    const size_t at = server_->WaitFor(marker, 0, seconds(60));
    if (at == std::string::npos) return 0;
    if (server_->WaitFor(" ", at, seconds(5)) == std::string::npos) return 0;
    return std::stoi(server_->output().substr(at));
  }
  void TearDown() override {
    if (server_ != nullptr && server_->started()) {
      kill(server_->pid(), SIGINT);
      EXPECT_EQ(server_->WaitExit(seconds(30)), 0) << server_->output();
    }
  }
  std::string Curl(int port, const std::string& path, const std::string& body,
                   const std::string& key = kApiKey) {
    std::string cmd =
        "curl -sS -N -H 'Authorization: Bearer " + key +
        "' -H 'Content-Type: application/json' http://127.0.0.1:" + std::to_string(port) + path;
    if (!body.empty()) cmd += " -d '" + body + "'";
    return RunCommand(cmd).output;
  }

  TempDir dir_;
  std::string model_;
  std::unique_ptr<PtyProcess> server_;
};

TEST_F(ServeCliTest, CurlGetsWholeAndStreamedRepliesAndCtrlCStopsTheServer) {
  if (!HaveCommand("curl")) GTEST_SKIP() << "curl is not installed (./test.sh installs it)";
  const int port = Start();
  ASSERT_NE(port, 0) << (server_ ? server_->output() : "");
  const std::string body =
      R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":10,"temperature":0)";
  const json whole = json::parse(Curl(port, "/v1/chat/completions", body + "}"), nullptr, false);
  ASSERT_TRUE(whole.is_object());
  ASSERT_TRUE(whole.contains("choices")) << whole.dump();
  EXPECT_EQ(whole["usage"]["completion_tokens"], 10);
  // Streamed: server-sent events whose deltas add up to the same reply.
  const std::string sse = Curl(port, "/v1/chat/completions", body + R"(,"stream":true})");
  std::string text;
  size_t pos = 0;
  while ((pos = sse.find("data: {", pos)) != std::string::npos) {
    const size_t end = sse.find("\n\n", pos);
    const json chunk = json::parse(sse.substr(pos + 6, end - pos - 6));
    if (!chunk["choices"].empty() && chunk["choices"][0]["delta"].contains("content")) {
      text += chunk["choices"][0]["delta"]["content"].get<std::string>();
    }
    pos = end;
  }
  EXPECT_EQ(text, whole["choices"][0]["message"]["content"].get<std::string>());
  EXPECT_NE(sse.find("data: [DONE]"), std::string::npos);
  // The key is required; health is open.
  EXPECT_NE(Curl(port, "/v1/models", "", "wrong").find("invalid_api_key"), std::string::npos);
  EXPECT_NE(RunCommand("curl -sS http://127.0.0.1:" + std::to_string(port) + "/health")
                .output.find("\"ok\""),
            std::string::npos);
  // TearDown: Ctrl-C, exit 0.
}

TEST_F(ServeCliTest, TheOfficialOpenAiClientWorks) {
  if (!HaveCommand("node")) GTEST_SKIP() << "Node.js is not installed";
  if (!HaveNpmPackage("openai")) {
    GTEST_SKIP() << "the openai npm package is not in " << NpmDir()
                 << " (./test.sh installs it with npm)";
  }
  const int port = Start();
  ASSERT_NE(port, 0) << (server_ ? server_->output() : "");
  const CommandResult r =
      RunCommand("env SLUICE_NPM_DIR=" + NpmDir() + " node " + ClientScript("openai_client.mjs") +
                 " " + std::to_string(port) + " " + kApiKey);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json j = LastJsonLine(r.output);
  ASSERT_TRUE(j.is_object()) << r.output;
  EXPECT_EQ(j["streamed"], j["whole"]);
  EXPECT_EQ(j["completion_tokens"], 16);
  EXPECT_EQ(j["whole_finish"], "length");
  EXPECT_EQ(j["finish"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 16);
  EXPECT_EQ(j["models"].size(), 1u);
  EXPECT_EQ(j["errorStatus"], 400);
  EXPECT_NE(j["errorMessage"].get<std::string>().find("messages"), std::string::npos);
  EXPECT_EQ(j["unauthorized"], 401);
}

// --diffusion-model: POST /v1/images/generations with curl and with the openai package's
// images.generate: b64_json PNGs (the base64 of a PNG starts "iVBORw0KGgo"), n of them with
// different seeds, a URL request refused.
TEST_F(ServeCliTest, ImagesFromCurlAndTheOpenAiClient) {
  const std::string sd = dir_.File("tiny-turbo.safetensors");
  ProcessResult synth =
      RunSluice({"synth", "--preset", "sd-turbo", "--tiny", "--out", sd, "--quiet"});
  ASSERT_EQ(synth.exit_code, 0) << synth.err;
  const int port = Start({"--diffusion-model", sd, "--max-images", "2"});
  ASSERT_NE(port, 0) << (server_ ? server_->output() : "");
  const json r = json::parse(
      Curl(port, "/v1/images/generations",
           R"({"prompt":"a cat","size":"64x64","steps":1,"seed":3,"response_format":"b64_json"})"),
      nullptr, false);
  ASSERT_TRUE(r.is_object() && r.contains("data")) << r.dump();
  ASSERT_EQ(r["data"].size(), 1u);
  EXPECT_TRUE(r["data"][0]["b64_json"].get<std::string>().starts_with("iVBORw0KGgo"));
  const json too_many = json::parse(
      Curl(port, "/v1/images/generations", R"({"prompt":"a cat","n":3})"), nullptr, false);
  ASSERT_TRUE(too_many.contains("error")) << too_many.dump();
  EXPECT_EQ(too_many["error"]["param"], "n");

  if (!HaveCommand("node") || !HaveNpmPackage("openai")) {
    GTEST_SKIP() << "Node.js or the openai npm package (in " << NpmDir()
                 << ") is missing: curl checked only (./test.sh installs them)";
  }
  const CommandResult c =
      RunCommand("env SLUICE_NPM_DIR=" + NpmDir() + " node " + ClientScript("images_client.mjs") +
                 " " + std::to_string(port) + " " + kApiKey);
  ASSERT_EQ(c.exit_code, 0) << c.output;
  const json j = LastJsonLine(c.output);
  ASSERT_TRUE(j.is_object()) << c.output;
  EXPECT_EQ(j["count"], 2);
  EXPECT_EQ(j["prefix"], "iVBORw0KGgo");
  EXPECT_GT(j["length"].get<int>(), 100);
  EXPECT_EQ(j["differ"], true);
  EXPECT_EQ(j["errorStatus"], 400);
}

// Chromium and the puppeteer-core npm package the page tests drive it with: Chromium's path, or
// "" and why not in *why.
std::string BrowserOrWhyNot(std::string* why) {
  std::string chromium;
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    chromium = FindCommand(name);
    if (!chromium.empty()) break;
  }
  if (chromium.empty()) {
    *why = "Chromium is not installed (./test.sh installs it)";
  } else if (!HaveCommand("node") || !HaveNpmPackage("puppeteer-core")) {
    *why = "Node.js or the puppeteer-core npm package (in " + NpmDir() +
           ") is missing; ./test.sh installs it";
    chromium.clear();
  }
  return chromium;
}

// The chat page's Image button: served images (64 px, 1 step) appear as a turn with its stats
// line and survive a reload; chat goes on after them.
TEST_F(ServeCliTest, TheChatPageMakesImagesInChromium) {
  std::string skip;
  const std::string chromium = BrowserOrWhyNot(&skip);
  if (chromium.empty()) GTEST_SKIP() << skip;
  const std::string sd = dir_.File("tiny-turbo.safetensors");
  ProcessResult synth =
      RunSluice({"synth", "--preset", "sd-turbo", "--tiny", "--out", sd, "--quiet"});
  ASSERT_EQ(synth.exit_code, 0) << synth.err;
  const int port = Start({"--diffusion-model", sd, "-W", "64", "-H", "64", "--steps", "1"});
  ASSERT_NE(port, 0) << (server_ ? server_->output() : "");
  const CommandResult r = RunCommand("env SLUICE_NPM_DIR=" + NpmDir() + " node " +
                                     ClientScript("chat_page_images.mjs") + " " +
                                     std::to_string(port) + " " + chromium + " " + kApiKey);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json j = LastJsonLine(r.output);
  ASSERT_TRUE(j.is_object()) << r.output;
  std::printf("page: %s\n", j.dump().c_str());
  EXPECT_EQ(j["buttonWithoutKey"], false) << "/v1/models needs the key";
  EXPECT_EQ(j["buttonWithKey"], true);
  EXPECT_EQ(j["imageWidth"], 64);
  EXPECT_NE(j["imageStats"].get<std::string>().find("image 64x64 from tiny-turbo"),
            std::string::npos)
      << j["imageStats"];
  EXPECT_NE(j["chatStats"].get<std::string>().find("reply"), std::string::npos) << j["chatStats"];
  EXPECT_EQ(j["imagesAfterReload"], 1);
  EXPECT_TRUE(j["pageErrors"].empty()) << j["pageErrors"];
}

TEST_F(ServeCliTest, TheChatPageStreamsAndStopsInChromium) {
  std::string skip;
  const std::string chromium = BrowserOrWhyNot(&skip);
  if (chromium.empty()) GTEST_SKIP() << skip;
  // A model slow enough (a few ms a token) that the browser sees a reply stream for seconds
  // before it presses Stop; the page asks without a key (it has a field for one).
  const std::string slow_model = dir_.File("slow.gguf");
  ASSERT_TRUE(WriteTestModel(slow_model, {.n_embd = 512,
                                          .n_layer = 8,
                                          .n_head = 8,
                                          .n_head_kv = 2,
                                          .head_dim = 64,
                                          .n_expert = 8,
                                          .n_expert_used = 2,
                                          .n_ff_exp = 512})
                  .ok());
  std::vector<std::string> args = {"serve",  "-m", slow_model,  "--port", "0",
                                   "--temp", "0",  "--threads", "1"};
  server_ = std::make_unique<PtyProcess>(args);
  const size_t at = server_->WaitFor("on http://127.0.0.1:", 0, seconds(60));
  ASSERT_NE(at, std::string::npos) << server_->output();
  ASSERT_NE(server_->WaitFor(" ", at, seconds(5)), std::string::npos);
  const int port = std::stoi(server_->output().substr(at));
  const CommandResult r =
      RunCommand("env SLUICE_NPM_DIR=" + NpmDir() + " node " + ClientScript("chat_page.mjs") + " " +
                 std::to_string(port) + " " + chromium);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json j = LastJsonLine(r.output);
  ASSERT_TRUE(j.is_object()) << r.output;
  std::printf("page: %s\n", j.dump().c_str());
  EXPECT_EQ(j["grew"], true) << "tokens arrived while the reply was streaming";
  EXPECT_EQ(j["stopEnabledWhileStreaming"], true);
  EXPECT_EQ(j["afterStop"], "stopped");
  EXPECT_EQ(j["sendEnabledAfterStop"], true);
  ASSERT_EQ(j["conversations"].size(), 1u);
  EXPECT_EQ(j["conversations"][0], "hello page");
  EXPECT_EQ(j["messagesAfterReload"], 2);
  EXPECT_NE(j["secondStats"].get<std::string>().find("tok/s"), std::string::npos)
      << j["secondStats"];
  EXPECT_EQ(j["conversationsAtEnd"], 2);
  EXPECT_TRUE(j["pageErrors"].empty()) << j["pageErrors"];
}

}  // namespace
}  // namespace sluice::testing
