// lucidctl agent: a node agent. Joins, waits for approval, keeps its API key
// in a 0600 file, then reports real host stats until stopped.
#pragma once

#include <atomic>
#include <string>

namespace lucidctl {

struct AgentOptions {
  std::string server;        // http://host:port
  std::string hostname;
  std::string ip_address;
  std::string system_info;
  std::string key_file;      // where the API key is kept
  std::string code;          // a registration code given by an admin: poll it instead of joining
  std::string disk_path = "/";
  int interval_seconds = 5;  // between stats reports
  int poll_seconds = 3;      // between approval polls
  int max_reports = 0;       // 0: forever
  int max_backoff_seconds = 30;
  // Network node (agent_network.hpp): the Ed25519 identity key file (0600),
  // whether this node offers itself as a relay, and its public endpoint.
  std::string identity_file;
  bool relay = false;
  std::string endpoint;
};

// Runs until stopped (`stop` becomes true), max_reports is reached, or a
// permanent failure (exit code 3: hostname active but no key; 4: key rejected).
int run_agent(const AgentOptions& opts, const std::atomic<bool>& stop);

}  // namespace lucidctl
