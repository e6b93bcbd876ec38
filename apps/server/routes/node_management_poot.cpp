// node-management.md, PoOT: score, validate, batch validate. The document
// references a PoOTValidation it never defines; docs/poot.md defines it and
// everything else these handlers answer. Errors are thrown as lucid::Error and
// encoded by node_management.cpp's one error encoder.
#include <limits>

#include "json.hpp"
#include "routes/node_management_common.hpp"
#include "routes/node_management_handlers.hpp"

namespace lucid::server {

namespace {

// The core checks sizes against Options::poot.max_output_bytes; the JSON layer
// only caps what it copies (the body itself is bounded by the server).
constexpr std::size_t kAnyLength = std::numeric_limits<std::size_t>::max();

// What a batch item that could not be validated reports: the document's code
// for its reason (the two reasons a PoOT item can fail with).
const char* item_error_code(const Error& e) {
  switch (e.reason()) {
    case Reason::node_not_found: return "LUCID_ERR_5001";
    case Reason::poot_failed: return "LUCID_ERR_5005";
    default: return e.code() == Errc::invalid_argument ? "LUCID_ERR_1001" : "LUCID_ERR_4008";
  }
}

const char* item_reason_code(const Error& e) {
  return e.reason() == Reason::node_not_found ? "node_not_found" : "malformed_proof";
}

void write_validation(JsonWriter& w, const PootValidation& v) {
  w.StartObject();
  w.Key("node_id"); write_string(w, v.node_uid);
  w.Key("valid"); w.Bool(v.valid);
  w.Key("validation_status"); w.String(poot_status_name(v.status));
  w.Key("output_hash"); if (v.output_hash.empty()) w.Null(); else write_string(w, v.output_hash);
  w.Key("nonce"); write_string(w, v.nonce);
  if (v.error) {
    w.Key("reason"); write_string(w, v.error->message());
    w.Key("reason_code"); w.String(item_reason_code(*v.error));
  } else if (v.valid) {
    w.Key("reason"); w.Null();
    w.Key("reason_code"); w.Null();
  } else {
    w.Key("reason"); write_string(w, v.reason);
    w.Key("reason_code"); w.String(poot_failure_name(v.failure));
  }
  w.Key("validated_at"); write_time(w, v.validated_at);
  if (v.error) {
    w.Key("error");
    w.StartObject();
    w.Key("code"); w.String(item_error_code(*v.error));
    w.Key("message"); write_string(w, v.error->message());
    if (!v.error->field().empty()) {
      w.Key("field"); write_string(w, v.error->field());
    }
    w.EndObject();
  }
  w.EndObject();
}

// A string member of a batch item; Error(invalid_argument) naming
// "validations.<i>.<name>" when present with another type, or missing and required.
std::string item_string(const rapidjson::Value& item, const char* name, const std::string& prefix, bool required) {
  auto it = item.FindMember(name);
  if (it == item.MemberEnd() || it->value.IsNull()) {
    if (required) throw Error(Errc::invalid_argument, "field required", prefix + name);
    return {};
  }
  if (!it->value.IsString())
    throw Error(Errc::invalid_argument, std::string(name) + " must be a string", prefix + name);
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

}  // namespace

http::Reply poot_score(Context& ctx) {
  const auto s = ctx.cluster.poot().score(mgmt::node_uid(ctx));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("node_id"); write_string(w, s.node_uid);
  w.Key("score"); w.Double(s.score);
  w.Key("confidence"); w.Double(s.confidence);
  w.Key("calculated_at"); write_time(w, s.calculated_at);
  w.Key("output_hash"); if (s.output_hash.empty()) w.Null(); else write_string(w, s.output_hash);
  w.Key("validation_status"); w.String(poot_status_name(s.status));
  w.Key("inputs");
  w.StartObject();
  w.Key("window_seconds"); w.Int64(ctx.cluster.options().poot.window.count());
  w.Key("proof_slots"); w.Int64(s.proof_slots);
  w.Key("proof_slots_expected"); w.Int64(s.proof_slots_expected);
  w.Key("heartbeat_slots"); w.Int64(s.heartbeat_slots);
  w.Key("heartbeat_slots_expected"); w.Int64(s.heartbeat_slots_expected);
  w.EndObject();
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply poot_validate(Context& ctx) {
  JsonBody body(ctx.req);
  PootProof p;
  p.node_uid = mgmt::node_uid(ctx);
  p.output_data = body.required_string("output_data", kAnyLength);
  p.timestamp = body.required_string("timestamp", kAnyLength);
  p.nonce = body.required_string("nonce", kAnyLength);
  p.signature = body.optional_string("signature", kAnyLength).value_or("");
  const auto v = ctx.cluster.poot().validate(p);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  write_validation(w, v);
  return json_reply(200, buf);
}

http::Reply poot_batch_validate(Context& ctx) {
  JsonBody body(ctx.req);
  const auto* arr = body.member("validations");
  if (!arr) throw Error(Errc::invalid_argument, "field required", "validations");
  if (!arr->IsArray()) throw Error(Errc::invalid_argument, "validations must be an array", "validations");
  if (arr->Size() > 1000) throw Error(Errc::invalid_argument, "at most 1000 validations per batch", "validations");

  // Items whose JSON shape is wrong are answered here; the rest go to the core
  // in one call. `slot[i]`: index into `proofs`, or -1 with `shape_errors[i]`.
  const std::size_t n = arr->Size();
  std::vector<PootProof> proofs;
  proofs.reserve(n);
  std::vector<std::ptrdiff_t> slot(n, -1);
  std::vector<std::optional<Error>> shape_errors(n);
  for (rapidjson::SizeType i = 0; i < arr->Size(); ++i) {
    const auto& item = (*arr)[i];
    const std::string prefix = "validations." + std::to_string(i) + ".";
    try {
      if (!item.IsObject())
        throw Error(Errc::invalid_argument, "each validation must be an object", "validations." + std::to_string(i));
      PootProof p;
      p.node_uid = item_string(item, "node_id", prefix, true);
      p.output_data = item_string(item, "output_data", prefix, true);
      p.timestamp = item_string(item, "timestamp", prefix, true);
      p.nonce = item_string(item, "nonce", prefix, true);
      p.signature = item_string(item, "signature", prefix, false);
      slot[i] = static_cast<std::ptrdiff_t>(proofs.size());
      proofs.push_back(std::move(p));
    } catch (const Error& e) {
      shape_errors[i] = e;
    }
  }
  auto r = ctx.cluster.poot().validate_batch(proofs);

  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("results");
  w.StartArray();
  std::int64_t errors = r.errors;
  for (std::size_t i = 0; i < n; ++i) {
    if (slot[i] < 0) {
      PootValidation v;
      v.validated_at = r.results.empty() ? ctx.cluster.clock().now() : r.results.front().validated_at;
      const auto& item = (*arr)[static_cast<rapidjson::SizeType>(i)];
      if (item.IsObject()) {
        auto id = item.FindMember("node_id");
        if (id != item.MemberEnd() && id->value.IsString()) v.node_uid = id->value.GetString();
        auto nonce = item.FindMember("nonce");
        if (nonce != item.MemberEnd() && nonce->value.IsString()) v.nonce = nonce->value.GetString();
      }
      v.error = shape_errors[i];
      ++errors;
      write_validation(w, v);
      continue;
    }
    auto& v = r.results[static_cast<std::size_t>(slot[i])];
    // The core named fields by the item's place among `proofs`; name its place
    // in the request instead.
    if (v.error && !v.error->field().empty()) {
      const std::string& f = v.error->field();
      const auto dot = f.find('.', 12);  // after "validations."
      if (f.rfind("validations.", 0) == 0 && dot != std::string::npos)
        v.error = Error(v.error->code(), v.error->message(), "validations." + std::to_string(i) + f.substr(dot),
                        v.error->reason());
    }
    write_validation(w, v);
  }
  w.EndArray();
  w.Key("summary");
  w.StartObject();
  w.Key("total"); w.Int64(static_cast<std::int64_t>(n));
  w.Key("valid"); w.Int64(r.valid);
  w.Key("invalid"); w.Int64(r.invalid);
  w.Key("errors"); w.Int64(errors);
  w.EndObject();
  w.EndObject();
  return json_reply(200, buf);
}

}  // namespace lucid::server
