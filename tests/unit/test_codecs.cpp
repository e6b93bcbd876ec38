// lib/util/json_object (the one reader of JSON input fields) and the codecs
// built on it: lib/tasks/task_codec (the task JSON the server's cluster routes
// and the C ABI share).
#include <doctest/doctest.h>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <functional>
#include <string>
#include <vector>

#include "lucidnode/error.hpp"
#include "support.hpp"
#include "tasks/task_codec.hpp"
#include "util/json.hpp"
#include "util/json_object.hpp"

using namespace lucid;
using detail::JsonObject;
using testsupport::field_of;
using testsupport::message_of;

TEST_CASE("JsonObject: typed fields; absent and null alike; errors name the bare field") {
  const JsonObject o(R"({"s":"héllo","n":2.5,"i":3.0,"z":null,"o":{"k":1},"b":true})");
  CHECK(o.required_string("s", 5) == "héllo");
  CHECK(message_of([&] { (void)o.required_string("s", 4); }) == "s must be at most 4 characters");
  CHECK(o.required_number("n") == 2.5);
  CHECK(o.required_int("i") == 3);
  CHECK(message_of([&] { (void)o.required_int("n"); }) == "n must be an integer");
  CHECK_FALSE(o.optional_string("z", 10).has_value());
  CHECK(message_of([&] { (void)o.required_string("z", 10); }) == "field required");
  CHECK(field_of([&] { (void)o.required_string("z", 10); }) == "z");
  CHECK(field_of([&] { (void)o.optional_string("b", 10); }) == "b");
  CHECK(JsonObject(o, "o").required_int("k") == 1);
  CHECK(JsonObject(o, "missing").root().ObjectEmpty());
  CHECK(field_of([&] { JsonObject(o, "s"); }) == "s");
  CHECK(field_of([] { JsonObject("[1]"); }) == "body");
  CHECK_THROWS_AS(JsonObject("{"), detail::MalformedJson);
  CHECK_THROWS_AS(JsonObject(""), detail::MalformedJson);
  rapidjson::Document d;
  REQUIRE(detail::parse_json(d, R"({"a":"b"})"));
  CHECK(JsonObject(d).required_string("a", 1) == "b");
}

TEST_CASE("reject_unknown_members and string_array") {
  rapidjson::Document d;
  REQUIRE(detail::parse_json(d, R"({"a":1,"extra":2})"));
  CHECK_NOTHROW(detail::reject_unknown_members(d, {"a", "extra"}, ""));
  CHECK(field_of([&] { detail::reject_unknown_members(d, {"a"}, "req."); }) == "req.extra");
  CHECK(message_of([&] { detail::reject_unknown_members(d, {"a"}, ""); }) == "unknown field 'extra'");
  REQUIRE(detail::parse_json(d, R"(["x","y"])"));
  CHECK(detail::string_array(d, "tags", 2) == std::vector<std::string>{"x", "y"});
  CHECK(message_of([&] { (void)detail::string_array(d, "tags", 1); }) == "tags must have at most 1 entries");
  REQUIRE(detail::parse_json(d, R"(["x",1])"));
  CHECK(message_of([&] { (void)detail::string_array(d, "tags", 5); }) == "tags must be an array of strings");
}

TEST_CASE("task codec: a submission body becomes a TaskSubmit") {
  const auto t = detail::decode_task_submit(JsonObject(
      R"({"task_type":"echo","payload":{"m":"hi"},"priority":"urgent","metadata":{"k":"v"},
          "requirements":{"min_cpu_cores":2,"min_memory_gb":1.5,"required_tags":["gpu"],"gpu_required":true,
                          "timeout_seconds":60}})"));
  CHECK(t.task_type == "echo");
  CHECK(t.payload_json == R"({"m":"hi"})");
  CHECK(t.priority == TaskPriority::urgent);
  CHECK(t.metadata_json == R"({"k":"v"})");
  CHECK(t.requirements.min_cpu_cores == 2);
  CHECK(t.requirements.min_memory_gb == 1.5);
  CHECK(t.requirements.required_tags == std::vector<std::string>{"gpu"});
  CHECK(t.requirements.gpu_required);
  CHECK(t.requirements.timeout_seconds == 60);
  CHECK(t.requirements.max_retries == 3);
  CHECK(t.submitter.empty());
}

TEST_CASE("task codec: bad submissions name the field, nested ones with requirements.") {
  auto field = [](const char* body) { return field_of([&] { detail::decode_task_submit(JsonObject(body)); }); };
  CHECK(field(R"({"payload":{}})") == "task_type");
  CHECK(field(R"({"task_type":"echo","priority":"asap"})") == "priority");
  CHECK(field(R"({"task_type":"echo","metadata":[1]})") == "metadata");
  CHECK(field(R"({"task_type":"echo","bogus":1})") == "bogus");
  CHECK(field(R"({"task_type":"echo","requirements":[]})") == "requirements");
  CHECK(field(R"({"task_type":"echo","requirements":{"cores":2}})") == "requirements.cores");
  CHECK(field(R"({"task_type":"echo","requirements":{"gpu_required":1}})") == "requirements.gpu_required");
  CHECK(field(R"({"task_type":"echo","requirements":{"min_cpu_cores":1.5}})") == "requirements.min_cpu_cores");
  CHECK(field(R"({"task_type":"echo","requirements":{"required_tags":"gpu"}})") == "requirements.required_tags");
}

namespace {
// What `write` writes for `t` in `style`, as text.
template <class Style>
std::string written(void (*write)(rapidjson::Writer<rapidjson::StringBuffer>&, const Task&, Style), const Task& t,
                    Style style) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  write(w, t, style);
  return std::string(b.GetString(), b.GetSize());
}
}  // namespace

TEST_CASE("task codec: a task as JSON, with or without its data") {
  Task t;
  t.task_id = "t1";
  t.task_type = "echo";
  t.payload_json = R"({"m":"hi"})";
  t.result_json = R"({"ok":true})";
  t.error = "boom";
  t.duration_ms = 1500;
  t.created_at = Timestamp(std::chrono::milliseconds(1700000000250));
  auto text = [&](detail::TaskJsonStyle style) { return written(detail::write_task_json, t, style); };
  const std::string full = text({true, false});
  CHECK(full.find(R"("payload":{"m":"hi"})") != std::string::npos);
  CHECK(full.find(R"("result_data":{"ok":true},"error":"boom")") != std::string::npos);
  CHECK(full.find(R"("execution_time_seconds":1.5)") != std::string::npos);
  CHECK(full.find(R"("device_id":null)") != std::string::npos);
  CHECK(full.find(R"("created_at":"2023-11-14T22:13:20Z")") != std::string::npos);
  const std::string bare = text({false, true});
  CHECK(bare.find(R"("payload":null)") != std::string::npos);
  CHECK(bare.find(R"("result_data":null,"error":null)") != std::string::npos);
  CHECK(bare.find(R"("created_at":"2023-11-14T22:13:20.250000Z")") != std::string::npos);
}

TEST_CASE("task codec: a task's result, the server's and the C ABI's (with final)") {
  Task t;
  t.task_id = "t1";
  t.status = TaskStatus::running;
  t.result_json = R"({"ok":true})";
  t.error = "boom";
  t.exit_code = 2;
  t.duration_ms = 1500;
  t.started_at = Timestamp(std::chrono::milliseconds(1700000000250));
  auto text = [&](detail::TaskResultStyle style) { return written(detail::write_task_result_json, t, style); };
  CHECK(text({true, false, false}) ==
        R"({"task_id":"t1","status":"running","result_data":{"ok":true},"error":"boom","exit_code":2,)"
        R"("execution_time_seconds":1.5,"worker_device_id":null,"started_at":"2023-11-14T22:13:20Z","completed_at":null})");
  CHECK(text({false, false, false}).find(R"("result_data":null,"error":null,"exit_code":2)") != std::string::npos);
  t.device_id = "dev-1";
  const std::string c_style = text({true, true, true});
  CHECK(c_style.find(R"("status":"running","final":false,"result_data")") != std::string::npos);
  CHECK(c_style.find(R"("worker_device_id":"dev-1")") != std::string::npos);
  CHECK(c_style.find(R"("started_at":"2023-11-14T22:13:20.250000Z")") != std::string::npos);
  t.status = TaskStatus::success;
  CHECK(text({true, true, true}).find(R"("final":true)") != std::string::npos);
  t.result_json = "{not json";
  CHECK(text({true, false, false}).find(R"("result_data":null)") != std::string::npos);
}

TEST_CASE("JsonObject: booleans, integers written as integers, and a prefix for nested fields") {
  const JsonObject o(R"({"b":true,"s":"x","i":3,"f":3.0,"n":null,"o":{"k":1}})");
  CHECK(o.optional_bool("b") == true);
  CHECK_FALSE(o.optional_bool("n").has_value());
  CHECK(message_of([&] { (void)o.optional_bool("s"); }) == "s must be true or false");
  CHECK(o.optional_exact_int("i") == 3);
  CHECK(o.optional_int("f") == 3);
  CHECK(message_of([&] { (void)o.optional_exact_int("f"); }) == "f must be an integer");
  CHECK_FALSE(o.optional_exact_int("absent").has_value());

  rapidjson::Document d;
  REQUIRE(detail::parse_json(d, R"({"cpu":"many","extra":1,"inner":{"x":"y"}})"));
  const JsonObject cap(d, "capabilities.");
  CHECK(cap.field_name("cpu") == "capabilities.cpu");
  CHECK(field_of([&] { (void)cap.optional_exact_int("cpu"); }) == "capabilities.cpu");
  CHECK(message_of([&] { (void)cap.optional_exact_int("cpu"); }) == "capabilities.cpu must be an integer");
  CHECK(field_of([&] { (void)cap.required_number("gone"); }) == "capabilities.gone");
  CHECK(message_of([&] { (void)cap.required_number("gone"); }) == "field required");
  CHECK(field_of([&] { cap.reject_unknown({"cpu", "inner"}); }) == "capabilities.extra");
  const JsonObject inner(cap, "inner");
  CHECK(field_of([&] { (void)inner.optional_int("x"); }) == "capabilities.x");
  // Without a prefix, fields are bare (the server's and the codecs' errors).
  CHECK(field_of([&] { (void)o.optional_bool("s"); }) == "s");
}

TEST_CASE("lenient peeks: a member of the type asked, else nothing") {
  rapidjson::Document d;
  REQUIRE(detail::parse_json(d, R"({"b":false,"a":[1],"o":{},"n":null,"s":"x"})"));
  CHECK(detail::peek_bool(d, "b") == false);
  CHECK_FALSE(detail::peek_bool(d, "s").has_value());
  CHECK(detail::peek_array(d, "a") != nullptr);
  CHECK(detail::peek_array(d, "o") == nullptr);
  CHECK(detail::peek_object(d, "o") != nullptr);
  CHECK(detail::peek_object(d, "a") == nullptr);
  CHECK(detail::peek_member(d, "s") != nullptr);
  CHECK(detail::peek_member(d, "n") == nullptr);
  CHECK(detail::peek_member(d, "absent") == nullptr);
  // Not an object: nothing, never an assertion.
  CHECK(detail::peek_member(d["a"], "s") == nullptr);
  CHECK_FALSE(detail::peek_bool(d["s"], "b").has_value());
}
