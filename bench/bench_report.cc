#include "bench/bench_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/base/byte_size.h"

namespace sluice {
namespace {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// JSON numbers: finite values with enough digits; NaN/inf (never expected) as null.
std::string Num(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}
std::string Int(uint64_t v) { return std::to_string(v); }

// The BenchRun convention: a negative value was not measured (mmap source, no prediction).
std::string NumOrNull(double v) { return v < 0 ? "null" : Num(v); }

// The prompt's I/O bound (its expert bytes / device GB/s) over its time: 1 when the prompt ran
// as fast as reading what it needed allows; 0 when it read nothing.
double PrefillBoundRatio(const BenchRun& run, double device_GBps) {
  if (run.prefill_bytes_read == 0 || run.prefill_tok_s <= 0 || device_GBps <= 0) return 0;
  return (run.prefill_bytes_read / 1e9 / device_GBps) / (run.prompt_tokens / run.prefill_tok_s);
}

class JsonObject {
 public:
  JsonObject& Add(const std::string& key, const std::string& raw) {
    body_ += (body_.empty() ? "" : ", ") + JsonString(key) + ": " + raw;
    return *this;
  }
  std::string str() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

// The per-run keys shared by the main run, the mmap run and sweep entries.
void AddRunKeys(const BenchReport& r, const BenchRun& run, JsonObject& o) {
  const double bound = r.BoundTokS(run);
  o.Add("expert_source", JsonString(run.expert_source))
      .Add("ram_budget_bytes", Int(run.ram_budget_bytes))
      .Add("prompt_tokens", Int(run.prompt_tokens))
      .Add("decode_tokens", Int(run.decode_tokens))
      .Add("prefill_tok_s", Num(run.prefill_tok_s))
      .Add("decode_tok_s", Num(run.decode_tok_s))
      .Add("ttft_s", Num(run.ttft_s))
      .Add("warm_s", NumOrNull(run.warm_s))
      .Add("prefill_bytes_read", Int(run.prefill_bytes_read))
      .Add("prefill_bound_ratio", Num(PrefillBoundRatio(run, r.device_GBps())))
      .Add("bytes_read_per_token", Num(run.bytes_read_per_token))
      .Add("hit_rate", NumOrNull(run.hit_rate))
      .Add("read_GBps", Num(run.read_GBps))
      .Add("read_bw_ratio", Num(run.read_GBps / r.device_GBps()))
      .Add("bound_tok_s", bound > 0 ? Num(bound) : "null")
      .Add("bound_ratio", bound > 0 ? Num(run.decode_tok_s / bound) : "null")
      .Add("peak_rss_bytes", Int(run.peak_rss_bytes))
      .Add("io_wait_fraction", NumOrNull(run.io_wait_fraction))
      .Add("attention_fraction", Num(run.attention_fraction))
      .Add("dense_ffn_fraction", Num(run.dense_ffn_fraction))
      .Add("expert_compute_fraction", Num(run.expert_compute_fraction))
      .Add("verify_fraction", Num(run.verify_fraction))
      .Add("device_busy_fraction", NumOrNull(run.device_busy_fraction))
      .Add("prefetch_next", Int(run.prefetch_next))
      .Add("prediction_accuracy", NumOrNull(run.prediction_accuracy))
      .Add("speculative_reads_per_token", Num(run.speculative_per_token))
      .Add("speculative_used_fraction", NumOrNull(run.speculative_used))
      .Add("wasted_bytes_per_token", Num(run.wasted_bytes_per_token))
      .Add("needed_bound_ratio", Num(r.NeededBoundRatio(run)))
      .Add("expert_cache_bytes", Int(run.expert_cache_bytes))
      .Add("dense_bytes", Int(run.dense_bytes));
}

std::string Pct(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.0f%%", 100 * v);
  return buf;
}

std::string Fixed(double v, int digits = 2) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

}  // namespace

double BenchReport::device_GBps() const {
  double sum = device_before.GBps + device_after.GBps;
  for (const DeviceProbe& p : device_rounds) sum += p.GBps;
  return sum / (2 + device_rounds.size());
}

std::vector<double> BenchReport::RoundRatios() const {
  std::vector<double> out;
  if (device_rounds.size() != run.rounds.size() + 1) return out;
  for (size_t i = 0; i < run.rounds.size(); ++i) {
    const BenchRound& r = run.rounds[i];
    const double device = 0.5 * (device_rounds[i].GBps + device_rounds[i + 1].GBps);
    out.push_back(r.bytes_read / r.seconds / 1e9 / device);
  }
  return out;
}

double BenchReport::NeededBoundRatio(const BenchRun& r) const {
  const double needed = r.bytes_read_per_token - r.wasted_bytes_per_token;
  if (needed <= 0 || device_GBps() <= 0) return 0;
  return r.decode_tok_s / (device_GBps() * 1e9 / needed);
}

double BenchReport::BoundTokS(const BenchRun& r) const {
  return r.bytes_read_per_token > 0 ? device_GBps() * 1e9 / r.bytes_read_per_token : 0;
}

std::string BenchReportJson(const BenchReport& r) {
  JsonObject o;
  o.Add("schema", JsonString(kBenchSchema))
      .Add("model", JsonString(r.model_path))
      .Add("model_name", JsonString(r.model_name))
      .Add("synthetic", r.synthetic ? "true" : "false")
      .Add("preset", r.preset.empty() ? "null" : JsonString(r.preset))
      .Add("model_bytes", Int(r.model_bytes))
      .Add("expert_bytes_total", Int(r.expert_bytes_total))
      .Add("dense_bytes_total", Int(r.dense_bytes_total))
      .Add("routing", JsonString(r.run.routing))
      .Add("device_GBps", Num(r.device_GBps()))
      .Add("device_GBps_before", Num(r.device_before.GBps))
      .Add("device_GBps_after", Num(r.device_after.GBps))
      .Add("device_read_bytes", Int(r.device_before.read_bytes))
      .Add("device_queue_depth", Int(r.device_before.queue_depth))
      .Add("device_direct", r.device_before.direct ? "true" : "false")
      .Add("device_qd_k", Int(r.device_qd_k.queue_depth))
      .Add("device_GBps_qd_k", Num(r.device_qd_k.GBps));
  AddRunKeys(r, r.run, o);
  {
    std::string probes = "[";
    probes.append(Num(r.device_before.GBps));
    for (const DeviceProbe& p : r.device_rounds) probes.append(", ").append(Num(p.GBps));
    probes.append(", ").append(Num(r.device_after.GBps)).append("]");
    o.Add("device_GBps_probes", probes);
    const std::vector<double> ratios = r.RoundRatios();
    std::string rounds = "[";
    for (size_t i = 0; i < ratios.size(); ++i) {
      const BenchRound& b = r.run.rounds[i];
      JsonObject j;
      j.Add("tokens", Int(b.tokens))
          .Add("decode_tok_s", Num(b.tokens / b.seconds))
          .Add("read_GBps", Num(b.bytes_read / b.seconds / 1e9))
          .Add("device_GBps", Num(0.5 * (r.device_rounds[i].GBps + r.device_rounds[i + 1].GBps)))
          .Add("read_bw_ratio", Num(ratios[i]));
      if (i > 0) rounds.append(", ");
      rounds.append(j.str());
    }
    rounds.append("]");
    o.Add("rounds", ratios.empty() ? std::string("null") : rounds);
    std::vector<double> sorted = ratios;
    std::sort(sorted.begin(), sorted.end());
    o.Add("read_bw_ratio_median_round", sorted.empty() ? "null" : Num(sorted[sorted.size() / 2]));
  }
  if (r.mmap.has_value()) {
    JsonObject m;
    AddRunKeys(r, *r.mmap, m);
    m.Add("mmap_limit_bytes", Int(r.mmap_limit_bytes))
        .Add("balloon_bytes", Int(r.balloon_bytes))
        .Add("mmap_reserve_bytes", Int(r.mmap_reserve_bytes))
        .Add("speedup", Num(r.run.decode_tok_s / r.mmap->decode_tok_s));
    o.Add("compare_mmap", m.str());
  } else {
    o.Add("compare_mmap", "null");
  }
  if (!r.sweep.empty()) {
    std::string list = "[";
    for (size_t i = 0; i < r.sweep.size(); ++i) {
      JsonObject s;
      AddRunKeys(r, r.sweep[i], s);
      list += (i ? ", " : "") + s.str();
    }
    o.Add("sweep", list + "]");
  } else {
    o.Add("sweep", "null");
  }
  return o.str() + "\n";
}

std::string BenchReportText(const BenchReport& r) {
  const BenchRun& run = r.run;
  const double bound = r.BoundTokS(run);
  std::string t;
  t += "model:    " + r.model_path + " (" + r.model_name + ")\n";
  if (r.synthetic) {
    t += "          SYNTHETIC: random weights (preset " + r.preset + "; " + r.shape +
         "); the text is gibberish, the expert I/O is the real model's\n";
  } else if (!r.shape.empty()) {
    t += "          " + r.shape + "\n";
  }
  t += "          " + FormatBytes(r.model_bytes) + ": experts " +
       FormatBytes(r.expert_bytes_total) + " streamed, dense " + FormatBytes(r.dense_bytes_total) +
       " resident\n";
  t += "routing:  " + run.routing + "\n";
  t += "memory:   " + run.memory_plan + "\n";
  t += "device:   random " + Fixed(r.device_before.read_bytes / 1e6) + " MB reads, QD " +
       std::to_string(r.device_before.queue_depth) +
       (r.device_before.direct ? ", O_DIRECT" : ", buffered (O_DIRECT refused)") + ": " +
       Fixed(r.device_before.GBps) + " GB/s before, " + Fixed(r.device_after.GBps) +
       " GB/s after; " + Fixed(r.device_qd_k.GBps) + " GB/s at QD " +
       std::to_string(r.device_qd_k.queue_depth) + " (one layer's k reads)\n";
  const std::vector<double> ratios = r.RoundRatios();
  if (!ratios.empty()) {
    t += "          between decode rounds:";
    for (const DeviceProbe& p : r.device_rounds) t.append(" ").append(Fixed(p.GBps));
    t += " GB/s; mean of all " + std::to_string(2 + r.device_rounds.size()) + ": " +
         Fixed(r.device_GBps()) + " GB/s\n";
  }
  t += "prefill:  " + std::to_string(run.prompt_tokens) + " tokens at " + Fixed(run.prefill_tok_s) +
       " tok/s; time to first token " + Fixed(run.ttft_s) + " s" +
       (run.warm_s < 0 ? std::string()
                       : " (experts read into the cache first, in " + Fixed(run.warm_s) + " s)") +
       "\n";
  if (run.prefill_bytes_read > 0) {
    const double prefill_s = run.prompt_tokens / run.prefill_tok_s;
    t += "          " + Fixed(run.prefill_bytes_read / 1e9, 2) + " GB of experts read during it (" +
         Fixed(run.prefill_bytes_read / 1e9 / prefill_s) + " GB/s); the I/O bound " +
         Fixed(run.prefill_bytes_read / 1e9 / r.device_GBps()) +
         " s = its bytes / device GB/s: " + "prefill at " +
         Pct(PrefillBoundRatio(run, r.device_GBps())) + " of it\n";
  }
  t += "decode:   " + std::to_string(run.decode_tokens) + " tokens at " +
       Fixed(run.decode_tok_s, 3) + " tok/s; " + Fixed(run.bytes_read_per_token / 1e6, 1) +
       " MB read per token, expert hit rate " + Pct(run.hit_rate) + ", reads at " +
       Fixed(run.read_GBps) + " GB/s\n";
  if (bound > 0) {
    t += "bound:    " + Fixed(r.device_GBps()) + " GB/s / " +
         Fixed(run.bytes_read_per_token / 1e6, 1) + " MB per token = " + Fixed(bound, 3) +
         " tok/s; decode at " + Pct(run.decode_tok_s / bound) + " of it (read bandwidth at " +
         Pct(run.read_GBps / r.device_GBps()) + " of the device)\n";
  } else {
    t += "bound:    nothing read while decoding (every expert was cached): compute-bound\n";
  }
  if (!ratios.empty()) {
    std::vector<double> sorted = ratios;
    std::sort(sorted.begin(), sorted.end());
    t += "rounds:   read GB/s / bracketing device GB/s per round:";
    for (double x : ratios) t.append(" ").append(Pct(x));
    t += " (median " + Pct(sorted[sorted.size() / 2]) + ")\n";
  }
  t +=
      "time:     I/O wait " + Pct(run.io_wait_fraction) + ", attention " +
      Pct(run.attention_fraction) +
      (run.dense_ffn_fraction > 0 ? ", dense FFNs " + Pct(run.dense_ffn_fraction) : "") +
      ", expert FFNs " + Pct(run.expert_compute_fraction) + ", verifying reads " +
      Pct(run.verify_fraction) + ", the rest (routing, output head, sampling) " +
      Pct(std::max(0.0, 1 - run.io_wait_fraction - run.attention_fraction - run.dense_ffn_fraction -
                            run.expert_compute_fraction - run.verify_fraction)) +
      "\n";
  if (run.device_busy_fraction >= 0) {
    t += "busy:     a read in flight " + Pct(run.device_busy_fraction) +
         " of the decode time (the device had nothing of ours to read the rest)\n";
  }
  if (run.prefetch_next > 0 && run.prediction_accuracy >= 0) {
    t += "prefetch: next layer's experts predicted " + Pct(run.prediction_accuracy) +
         " right; up to " + std::to_string(run.prefetch_next) +
         " missing ones per layer read ahead (" + Fixed(run.speculative_per_token, 1) +
         " per token, " +
         (run.speculative_used < 0 ? std::string("none") : Pct(run.speculative_used)) +
         " of them used); " + Fixed(run.wasted_bytes_per_token / 1e6, 1) +
         " MB per token read in vain; decode at " + Pct(r.NeededBoundRatio(run)) +
         " of the bound on the bytes it needed\n";
  }
  t += "RSS:      peak " + FormatBytes(run.peak_rss_bytes) + " of the " +
       FormatBytes(run.ram_budget_bytes) + " budget" +
       (run.ram_budget_bytes > 0 && run.peak_rss_bytes > run.ram_budget_bytes ? " (OVER)" : "") +
       "\n";
  if (r.mmap.has_value()) {
    const BenchRun& m = *r.mmap;
    t += "mmap:     page-cache baseline with " + FormatBytes(r.mmap_limit_bytes) + " of RAM (+ " +
         FormatBytes(r.mmap_reserve_bytes) + " reserve shared with the machine; " +
         FormatBytes(r.balloon_bytes) + " mlocked away): " + Fixed(m.decode_tok_s, 3) + " tok/s, " +
         Fixed(m.bytes_read_per_token / 1e6, 1) + " MB read per token, prefill " +
         Fixed(m.prefill_tok_s) + " tok/s, peak RSS " + FormatBytes(m.peak_rss_bytes) + "\n";
    t += "          sluice is " + Fixed(run.decode_tok_s / m.decode_tok_s, 1) +
         "x the mmap baseline's decode speed\n";
  }
  if (!r.sweep.empty()) {
    char line[256];
    std::snprintf(line, sizeof(line), "\n%12s %10s %9s %12s %10s %9s %12s\n", "RAM budget", "tok/s",
                  "hit rate", "MB/token", "bound", "vs bound", "peak RSS");
    t += line;
    for (const BenchRun& s : r.sweep) {
      const double b = r.BoundTokS(s);
      std::snprintf(line, sizeof(line), "%12s %10.3f %8.1f%% %12.1f %10.3f %8.0f%% %12s\n",
                    FormatBytes(s.ram_budget_bytes).c_str(), s.decode_tok_s, 100 * s.hit_rate,
                    s.bytes_read_per_token / 1e6, b, b > 0 ? 100 * s.decode_tok_s / b : 0.0,
                    FormatBytes(s.peak_rss_bytes).c_str());
      t += line;
    }
  }
  return t;
}

std::string SweepSvg(const BenchReport& r) {
  if (r.sweep.empty()) return "";
  const double W = 720, H = 420, left = 70, right = 70, top = 40, bottom = 60;
  const double pw = W - left - right, ph = H - top - bottom;
  double max_tok = 0;
  double min_b = 1e300, max_b = 0;
  for (const BenchRun& s : r.sweep) {
    max_tok = std::max(max_tok, s.decode_tok_s);
    min_b = std::min(min_b, static_cast<double>(s.ram_budget_bytes));
    max_b = std::max(max_b, static_cast<double>(s.ram_budget_bytes));
  }
  max_tok = max_tok > 0 ? max_tok * 1.15 : 1;
  const double lmin = std::log2(min_b), lmax = std::log2(max_b) + (max_b == min_b ? 1 : 0);
  auto x_of = [&](double b) { return left + pw * (std::log2(b) - lmin) / (lmax - lmin); };
  auto y_tok = [&](double v) { return top + ph * (1 - v / max_tok); };
  auto y_hit = [&](double v) { return top + ph * (1 - v); };
  char buf[512];
  std::string svg;
  std::snprintf(buf, sizeof(buf),
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" "
                "height=\"100%%\" fill=\"white\"/>\n",
                W, H);
  svg += buf;
  std::string title = "sluice bench: " + r.model_name + (r.synthetic ? " (random weights)" : "") +
                      ", routing " + r.run.routing.substr(0, r.run.routing.find(' '));
  std::string escaped;
  for (char c : title) escaped += c == '<' ? "&lt;" : c == '&' ? "&amp;" : std::string(1, c);
  std::snprintf(buf, sizeof(buf), "<text x=\"%.0f\" y=\"22\" font-size=\"14\">%s</text>\n", left,
                escaped.c_str());
  svg += buf;
  std::snprintf(buf, sizeof(buf),
                "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
                "stroke=\"#888\"/>\n",
                left, top, pw, ph);
  svg += buf;
  for (int i = 0; i <= 4; ++i) {  // left axis: tok/s, right axis: hit rate
    const double f = i / 4.0;
    std::snprintf(buf, sizeof(buf),
                  "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\" fill=\"#1f5fbf\">%.2f</text>\n"
                  "<text x=\"%.0f\" y=\"%.0f\" fill=\"#d9730d\">%.0f%%</text>\n",
                  left - 6, top + ph * (1 - f) + 4, max_tok * f, left + pw + 6,
                  top + ph * (1 - f) + 4, 100 * f);
    svg += buf;
  }
  for (const BenchRun& s : r.sweep) {
    std::snprintf(buf, sizeof(buf),
                  "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%s</text>\n",
                  x_of(s.ram_budget_bytes), top + ph + 18, FormatBytes(s.ram_budget_bytes).c_str());
    svg += buf;
  }
  std::snprintf(buf, sizeof(buf),
                "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">RAM budget</text>\n"
                "<text x=\"14\" y=\"%.0f\" fill=\"#1f5fbf\" transform=\"rotate(-90 14 %.0f)\" "
                "text-anchor=\"middle\">decode tokens/s</text>\n"
                "<text x=\"%.0f\" y=\"%.0f\" fill=\"#d9730d\" transform=\"rotate(90 %.0f %.0f)\" "
                "text-anchor=\"middle\">expert hit rate</text>\n",
                left + pw / 2, H - 18, top + ph / 2, top + ph / 2, W - 14, top + ph / 2, W - 14,
                top + ph / 2);
  svg += buf;
  std::string tok_line, hit_line;
  for (const BenchRun& s : r.sweep) {
    std::snprintf(buf, sizeof(buf), "%.1f,%.1f ", x_of(s.ram_budget_bytes), y_tok(s.decode_tok_s));
    tok_line += buf;
    std::snprintf(buf, sizeof(buf), "%.1f,%.1f ", x_of(s.ram_budget_bytes),
                  y_hit(std::max(0.0, s.hit_rate)));
    hit_line += buf;
  }
  svg += "<polyline fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"2\" points=\"" + tok_line +
         "\"/>\n";
  svg +=
      "<polyline fill=\"none\" stroke=\"#d9730d\" stroke-width=\"2\" stroke-dasharray=\"6 4\" "
      "points=\"" +
      hit_line + "\"/>\n";
  for (const BenchRun& s : r.sweep) {
    std::snprintf(buf, sizeof(buf),
                  "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#1f5fbf\"/>\n"
                  "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#d9730d\"/>\n",
                  x_of(s.ram_budget_bytes), y_tok(s.decode_tok_s), x_of(s.ram_budget_bytes),
                  y_hit(std::max(0.0, s.hit_rate)));
    svg += buf;
  }
  return svg + "</svg>\n";
}

}  // namespace sluice
