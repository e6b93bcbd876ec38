// Shared by the cluster API's route files (cluster-devices-tasks.md and the
// agent protocol, docs/agent-protocol.md): its envelope and error format.
#pragma once

#include <string>

#include "json.hpp"
#include "router.hpp"

namespace lucid::server::cluster_api {

// The document's error form: {"status": "error", "message", "error_code",
// "error_details", "timestamp", "request_id"}. The one encoder of the surface.
http::Response cluster_error(const Failure& f);

// The success envelope: begin() writes {"status": "success", "data": and the
// caller writes the data value; finish() adds message, timestamp, request_id
// (and `extra`, called inside the top-level object, e.g. for "pagination").
void begin(JsonWriter& w);
http::Reply finish(const Context& ctx, const rapidjson::StringBuffer& buf, JsonWriter& w, int status = 200,
                   const char* message = "OK");
// The same outside a request's Context (deferred replies).
http::Response finish_response(Cluster& cluster, const std::string& request_id, const rapidjson::StringBuffer& buf,
                               JsonWriter& w, int status = 200, const char* message = "OK");

void write_device(JsonWriter& w, const Device& d, Timestamp now);
// Everything about a task (GET /tasks/{id}).
// `full`: with payload, result_data and error; false writes them as null
// (a caller who neither submitted the task nor operates the fleet).
void write_task(JsonWriter& w, const Task& t, bool full = true);
// The result view (GET /tasks/{id}/result).
void write_task_result(JsonWriter& w, const Task& t, bool full = true);
// A JSON text stored by the core, written as a value.
void write_raw_json(JsonWriter& w, const std::string& text);

}  // namespace lucid::server::cluster_api
