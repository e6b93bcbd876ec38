// lucidctl payouts batch: POST /api/v1/nodes/payouts/batch, and --watch
// following the batch through each node's payouts (GET
// /api/v1/nodes/{node_id}/payouts) until none is pending or processing.
#include <rapidjson/document.h>

#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "commands.hpp"
#include "util/json.hpp"
#include "util/json_object.hpp"

namespace lucidctl {

namespace {

constexpr std::size_t kMaxBatchFile = 4 * 1024 * 1024;

// Counts the batch's payouts by status across its nodes.
std::map<std::string, int> batch_state(const Remote& r, const std::set<std::string>& nodes, const std::string& batch) {
  std::map<std::string, int> count;
  for (const auto& node : nodes) {
    Paging p;
    p.items = "payouts";
    p.path = [node](std::int64_t page, std::int64_t) {
      return "/api/v1/nodes/" + node + "/payouts?limit=100&page=" + std::to_string(page);
    };
    const auto all = list_all(r, p);
    for (const auto& x : all.GetArray())
      if (text_at(x, "batch_id") == batch) ++count[text_at(x, "status")];
  }
  return count;
}

}  // namespace

void add_payout_commands(CLI::App* payouts, Commands& c) {
  struct Opts {
    std::string file, batch_id;
    bool watch = false;
    double interval = 2;
  };
  auto o = std::make_shared<Opts>();
  auto* batch = payouts->add_subcommand("batch", "Submit a batch of payouts; --watch follows it to the end");
  batch->add_option("FILE", o->file,
                    "JSON file: an array of {node_id, amount, currency, wallet_address}, or the whole request body "
                    "(- for stdin)")
      ->required();
  batch->add_option("--batch-id", o->batch_id, "The batch's id (default: the file's, else the server picks one)");
  batch->add_flag("-w,--watch", o->watch, "Print the batch's progress until no payout is pending or processing");
  batch->add_option("--interval", o->interval, "Seconds between --watch polls")->check(CLI::Range(0.5, 3600.0))->capture_default_str();
  examples(batch, "  lucidctl payouts batch payouts.json --batch-id 2026-12-week1 --watch\n");
  on_run(batch, c, [&c, o, batch] {
    std::string text;
    if (o->file == "-") {
      std::ostringstream s;
      s << std::cin.rdbuf();
      text = s.str();
    } else {
      std::ifstream f(o->file, std::ios::binary);
      if (!f) usage_error("cannot read " + o->file);
      std::ostringstream s;
      s << f.rdbuf();
      text = s.str();
    }
    if (text.size() > kMaxBatchFile) usage_error(o->file + " is larger than 4 MiB");
    rapidjson::Document d;
    // Numbers stay text: amounts are exact decimals and go to the server as written.
    if (const auto res = lucid::detail::parse_json(d, text, lucid::detail::kJsonNumbersAsText,
                                                   lucid::detail::kJsonMaxDepth);
        !res)
      usage_error(o->file + " is not JSON: " + res.describe());
    const rapidjson::Value* requests = d.IsArray() ? &d : lucid::detail::peek_array(d, "payout_requests");
    if (!requests) usage_error(o->file + " holds neither an array of payout requests nor {\"payout_requests\": [...]}");
    std::set<std::string> nodes;
    for (const auto& p : requests->GetArray())
      if (const auto id = lucid::detail::peek_string(p, "node_id")) nodes.insert(*id);
    std::string body = text;
    std::string batch_id = o->batch_id;
    if (batch_id.empty() && d.IsObject()) batch_id = lucid::detail::peek_string(d, "batch_id").value_or("");
    if (d.IsArray()) {
      // The body around the requests, their text kept exactly.
      JsonBody b;
      b.raw("payout_requests", text.substr(text.find('['), text.rfind(']') - text.find('[') + 1));
      if (!batch_id.empty()) b.str("batch_id", batch_id);
      body = b.text();
    } else if (batch->count("--batch-id")) {
      usage_error("--batch-id goes with a file that is only the array of requests (a whole body names its own)");
    }
    const auto answer = request(c.remote, "POST", "/api/v1/nodes/payouts/batch", body);
    const std::string id = text_at(answer, "batch_id");
    if (c.remote.json() && !o->watch) return print_json(answer), 0;
    if (!c.remote.json())
      std::cout << "batch " << id << " " << text_at(answer, "status") << ": " << requests->Size() << " payout(s) to "
                << nodes.size() << " node(s)" << std::endl;
    if (!o->watch) return 0;
    install_watch_signals();
    std::string last;
    for (;;) {
      const auto count = batch_state(c.remote, nodes, id);
      int open = 0, total = 0;
      std::string line = "batch " + id + ":";
      for (const auto& [status, n] : count) {
        line += " " + std::to_string(n) + " " + status;
        total += n;
        if (status == "pending" || status == "processing") open += n;
      }
      if (line != last) std::cout << line << std::endl;
      last = line;
      if (total > 0 && open == 0) return count.count("failed") ? 1 : 0;
      if (!watch_sleep(o->interval)) return 130;
    }
  });
}

}  // namespace lucidctl
