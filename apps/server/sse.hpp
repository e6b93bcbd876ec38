// Server-Sent Events over http::Stream: a timer on the stream's own strand
// sends one event per interval; a slow client's queue is bounded by the
// stream (updates are dropped for it, nobody else waits).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "http/http_server.hpp"
#include "router.hpp"  // kStreamAuthTick

namespace lucid::server {

// Produces the JSON of the next event, or nullopt to end the stream.
using EventProducer = std::function<std::optional<std::string>()>;

// A Reply that opens an SSE stream and sends producer() now and then every
// `interval` until the client leaves, the server stops, or `authorized`
// (when given; e.g. router.hpp's caller_recheck) answers false: it is asked
// before every event and every kStreamAuthTick in between, and a false ends
// the stream at once (the connection closes).
http::Reply sse_reply(std::chrono::seconds interval, EventProducer producer,
                      std::function<bool()> authorized = {});

}  // namespace lucid::server
