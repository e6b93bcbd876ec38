// lucidctl's remote commands: one request or a whole paged list against a
// running server, and the table / key-value / JSON output every command
// shares. Not thread-safe (one command runs at a time).
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "client.hpp"

namespace lucidctl {

enum class Output { table, wide, json };

// Where and as whom remote commands talk, and how they print.
struct Remote {
  std::string server;  // http(s)://host:port
  std::string token;   // bearer token or API key ("" = none)
  Output output = Output::table;
  bool json() const { return output == Output::json; }
  bool wide() const { return output == Output::wide; }
};

// A command that cannot go on: main prints "lucidctl: <what()>" to stderr and
// exits with `code` (README: 1 refused, 2 usage, 3 unreachable, 5 TLS).
struct Failure : std::runtime_error {
  Failure(const std::string& message, int exit_code) : std::runtime_error(message), code(exit_code) {}
  int code;
};

// A usage error (exit 2).
[[noreturn]] void usage_error(const std::string& message);

// One request. method: GET, POST, PUT, DELETE. Returns the parsed JSON body
// (a Null document for an empty body, e.g. 204). Throws Failure on a non-2xx
// answer (the server's message, exit 1), when unreachable (3), on TLS (5), on
// a malformed body (1), or without a server (2).
rapidjson::Document request(const Remote& r, const std::string& method, const std::string& path,
                            const std::string& body = {});

// Like request, but returns the body text as the server sent it.
std::string request_text(const Remote& r, const std::string& method, const std::string& path,
                         const std::string& body = {});

// How a list route pages.
struct Paging {
  // The path of page `page` (1-based) starting at item `offset` (0-based):
  // routes page by number or by skip, whichever they take.
  std::function<std::string(std::int64_t page, std::int64_t offset)> path;
  std::int64_t page_size = 100;  // what `path` asks for per page
  // Where the items are: a member of the body ("nodes", "data"), or "" for a
  // body that is the array itself.
  std::string items;
};

// Follows a paged list to its end and returns every item as one array. The
// end is the pagination's has_next / pages / total when the body has one,
// else a short page. Never stops silently: a list still going after
// `max_items` items is a Failure (exit 1), and a list whose total changed
// while it was read says so on stderr.
rapidjson::Document list_all(const Remote& r, const Paging& paging, std::int64_t max_items = 1000000);

// The value at a dotted path ("capabilities.cpu_count") as display text:
// "-" when missing or null, yes/no for booleans, numbers as written, arrays of
// scalars joined by ",", "{…}" for objects.
std::string text_at(const rapidjson::Value& v, const std::string& path);

// How long ago the RFC 3339 time at `path` was ("45s", "12m", "3h", "9d"),
// or "-" when missing or malformed.
std::string age_at(const rapidjson::Value& v, const std::string& path);

struct Column {
  std::string head;
  std::function<std::string(const rapidjson::Value&)> get;
  bool wide_only = false;  // shown with -o wide
};
// A column showing text_at(path).
Column col(std::string head, std::string path, bool wide_only = false);

// Prints `items` (an array) as a table, or as JSON with --json.
void print_list(const Remote& r, const std::vector<Column>& columns, const rapidjson::Value& items);
// Prints rows of text under `head`, columns aligned.
void print_table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows);
// Prints an object as "key   value" lines, nested objects flattened with
// dotted keys (JSON with --json).
void print_object(const Remote& r, const rapidjson::Value& obj);
// Pretty-prints JSON.
void print_json(const rapidjson::Value& v);
// Pretty-prints JSON text keeping every number exactly as written (amounts
// are exact decimals). Returns false if the text is not JSON.
bool print_exact_json(const std::string& body);

// A JSON object built from name/value pairs, for request bodies. Values are
// strings unless added with `raw` (already JSON: numbers, booleans, objects).
class JsonBody {
 public:
  JsonBody& str(const std::string& key, const std::string& value);
  JsonBody& raw(const std::string& key, const std::string& json);
  JsonBody& num(const std::string& key, double value);
  JsonBody& integer(const std::string& key, std::int64_t value);
  JsonBody& boolean(const std::string& key, bool value);
  std::string text() const;
  bool empty() const { return members_.empty(); }

 private:
  std::vector<std::pair<std::string, std::string>> members_;  // key, JSON text
};

// JSON string literal of `s` (quotes included).
std::string json_quote(const std::string& s);
// Throws a usage error unless `text` parses as JSON (for --payload, --set ...);
// returns it.
std::string checked_json(const std::string& text, const std::string& what);
// Percent-encodes a path segment or query value.
std::string url_encode(const std::string& s);

// Sleeps up to `seconds`, waking early on SIGINT/SIGTERM. Returns false when
// interrupted (the --watch loops stop then).
bool watch_sleep(double seconds);
// Installs the SIGINT/SIGTERM handlers watch_sleep notices.
void install_watch_signals();
bool watch_interrupted();

}  // namespace lucidctl
