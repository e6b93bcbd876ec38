// node-management.md, payouts: a node's payout history and batch submission.
// Amounts are exact: the body is parsed a second time with numbers kept as
// their source text (RapidJSON kParseNumbersAsStringsFlag), which the core
// parses into integer micro-units; responses print the stored micro-units as
// the shortest exact decimal (JSON number, e.g. 12.5). Errors are thrown as
// lucid::Error and encoded by node_management.cpp's one error encoder.
#include "json.hpp"
#include "routes/node_management_common.hpp"
#include "routes/node_management_handlers.hpp"

namespace lucid::server {

namespace {

[[noreturn]] void bad(const std::string& field, const std::string& msg) {
  throw Error(Errc::invalid_argument, msg, field);
}

void write_opt_text(JsonWriter& w, const std::string& s) {
  if (s.empty()) w.Null(); else write_string(w, s);
}

// Whole seconds, rounded up: an estimate must not lie in the past.
void write_time_ceil(JsonWriter& w, Timestamp t) {
  const auto whole = std::chrono::floor<std::chrono::seconds>(t);
  write_time(w, whole == t ? t : Timestamp(whole + std::chrono::seconds(1)));
}

void write_payout(JsonWriter& w, const Payout& p) {
  w.StartObject();
  w.Key("payout_id"); write_string(w, p.payout_id);
  w.Key("node_id"); write_string(w, p.node_uid);
  w.Key("amount"); write_micros(w, p.amount_micros);
  w.Key("currency"); w.String(currency_name(p.currency));
  w.Key("wallet_address"); write_opt_text(w, p.wallet_address);
  w.Key("status"); w.String(payout_status_name(p.status));
  w.Key("transaction_hash"); write_opt_text(w, p.transaction_hash);
  w.Key("batch_id"); write_string(w, p.batch_id);
  w.Key("created_at"); write_time(w, p.created_at);
  w.Key("processed_at"); write_time(w, p.processed_at);
  w.Key("completed_at"); write_time(w, p.completed_at);
  w.Key("failure_reason"); write_opt_text(w, p.failure_reason);
  w.EndObject();
}

const rapidjson::Value* present(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

std::optional<std::string> string_member(const rapidjson::Value& obj, const char* name, const std::string& field) {
  const auto* v = present(obj, name);
  if (!v) return std::nullopt;
  if (!v->IsString()) bad(field, std::string(name) + " must be a string");
  return std::string(v->GetString(), v->GetStringLength());
}

PayoutBatchRequest batch_request(const http::Request& req) {
  const JsonBody body(req);  // types; malformed JSON and non-objects fail here
  const rapidjson::Document text = parse_numbers_as_text(req);
  PayoutBatchRequest out;
  if (auto id = string_member(body.root(), "batch_id", "batch_id")) {
    if (id->empty()) bad("batch_id", "batch_id must not be empty");
    out.batch_id = std::move(*id);
  }
  const auto* list = present(body.root(), "payout_requests");
  if (!list) bad("payout_requests", "field required");
  if (!list->IsArray()) bad("payout_requests", "payout_requests must be an array");
  const auto& text_list = text["payout_requests"];
  out.requests.reserve(list->Size());
  for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
    const std::string prefix = "payout_requests." + std::to_string(i);
    const auto& item = (*list)[i];
    if (!item.IsObject()) bad(prefix, "each payout request must be an object");
    PayoutRequest r;
    auto node = string_member(item, "node_id", prefix + ".node_id");
    if (!node) bad(prefix + ".node_id", "field required");
    r.node_uid = std::move(*node);
    const auto* amount = present(item, "amount");
    if (!amount) bad(prefix + ".amount", "field required");
    if (!amount->IsNumber()) bad(prefix + ".amount", "amount must be a number");
    const auto& amount_text = text_list[i]["amount"];
    r.amount.assign(amount_text.GetString(), amount_text.GetStringLength());
    if (auto c = string_member(item, "currency", prefix + ".currency")) r.currency = std::move(*c);
    if (auto wa = string_member(item, "wallet_address", prefix + ".wallet_address")) r.wallet_address = std::move(*wa);
    out.requests.push_back(std::move(r));
  }
  return out;
}

}  // namespace

http::Reply node_payouts(Context& ctx) {
  const auto page = mgmt::page_params(ctx.req);
  PayoutQuery q;
  q.page = page.page;
  q.limit = page.limit;
  if (auto s = ctx.req.query_param("status")) {
    q.status = parse_payout_status(*s);
    if (!q.status) bad("query:status", "status must be one of pending, processing, completed, failed");
  }
  std::int64_t total = 0;
  const auto payouts = ctx.cluster.payouts().list_for_node(mgmt::node_uid(ctx), q, &total);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("payouts");
  w.StartArray();
  for (const auto& p : payouts) write_payout(w, p);
  w.EndArray();
  w.Key("pagination");
  mgmt::write_pagination(w, page, total);
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply payouts_batch(Context& ctx) {
  const auto b = ctx.cluster.payouts().submit(batch_request(ctx.req));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("batch_id"); write_string(w, b.batch_id);
  w.Key("status"); write_string(w, b.status);
  w.Key("estimated_completion"); write_time_ceil(w, b.estimated_completion);
  w.Key("payout_count"); w.Int64(b.payout_count);
  w.Key("counts");
  w.StartObject();
  w.Key("pending"); w.Int64(b.pending);
  w.Key("processing"); w.Int64(b.processing);
  w.Key("completed"); w.Int64(b.completed);
  w.Key("failed"); w.Int64(b.failed);
  w.EndObject();
  w.Key("replayed"); w.Bool(!b.created);
  w.Key("created_at"); write_time(w, b.created_at);
  w.EndObject();
  return json_reply(202, buf);
}

}  // namespace lucid::server
