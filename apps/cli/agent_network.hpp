// lucidctl agent, network-node part: the agent's Ed25519 identity (a key pair
// in a 0600 file, created atomically) whose public key is registered with the
// node's API key (PUT /api/v1/stats/public-key: the same key signs PoOT proofs
// and logs in with the challenge login), and the network report
// (PUT /api/agent/network: capabilities, relay role, measured latency).
#pragma once

#include <string>

#include "agent.hpp"
#include "client.hpp"

namespace lucidctl {

// Loads or creates the identity key and registers its public key. Returns the
// public key (hex), or "" after printing why it failed.
std::string register_identity(ApiClient& api, const AgentOptions& o);

// Sends this host's capabilities and the round-trip time of the previous call
// to the server. False (after printing why) when the server refused it.
bool report_network(ApiClient& api, const AgentOptions& o);

}  // namespace lucidctl
