// lucidctl's remote command groups. Each add_* function defines a group's
// subcommands on the CLI11 app; the subcommand that was parsed leaves its
// work in Commands::action, which main runs after parsing (so global options
// given after the subcommand count too).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>

#include "remote.hpp"

namespace lucidctl {

struct Commands {
  Remote remote;
  std::function<int()> action;  // set by the parsed subcommand
};

// Makes `sub`, once parsed, run `work` (which returns the exit code).
void on_run(CLI::App* sub, Commands& c, std::function<int()> work);

// An example section for a command's --help.
void examples(CLI::App* sub, const std::string& text);

void add_node_commands(CLI::App& app, Commands& c);      // nodes, pools
void add_task_commands(CLI::App& app, Commands& c);      // tasks
void add_cluster_commands(CLI::App& app, Commands& c);   // devices, config, cluster, apikeys
void add_user_commands(CLI::App* users, Commands& c);    // users list/show/create/update/delete
void add_network_commands(CLI::App& app, Commands& c);   // services, workflows
void add_payout_commands(CLI::App* payouts, Commands& c); // payouts batch

// lucidctl completion bash|zsh: a completion script generated from `app`'s
// command tree (subcommands and options at every level).
std::string completion_script(const CLI::App& app, const std::string& shell);

// Before CLI11 parses: walks argv's words through the command tree and
// returns the message for the first word that names no subcommand of a
// command group ("" when every word is known). CLI11 would otherwise call it
// an unexpected argument or ask for a subcommand.
std::string unknown_command(const CLI::App& app, int argc, const char* const* argv);

}  // namespace lucidctl
