// lucid-server --config FILE: a TOML file mirroring the command line. The
// flags are declared once, on the CLI11 app (main.cpp); the file's keys are
// their long names without "--" (listen = "127.0.0.1:8080", workers = 8,
// insecure-http = true), read through CLI11's config hook with toml++
// parsing the file. A flag given on the command line overrides the file.
#pragma once

#include <CLI/CLI.hpp>

#include <istream>
#include <string>
#include <vector>

namespace lucid::server {

// CLI11's config reader for TOML. from_config() refuses, with a
// CLI::ConfigError naming the key, the line and what was expected: a TOML
// syntax error, a key that is no flag of `app` (or not configurable: config,
// help, version, print-security-model), a table or an array, and a value
// whose TOML type does not match the flag (a flag wants a boolean, an
// integer option an integer, a floating option a number, a text option a
// string). Range checks are the flags' own validators, as on the command
// line. Not thread-safe; used during parsing only.
class TomlConfig : public CLI::Config {
 public:
  explicit TomlConfig(const CLI::App* app) : app_(app) {}
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;
  // The app's configurable options as a TOML file (current values; defaults
  // too when `default_also`), one "# description" line above each when
  // `write_description`.
  std::string to_config(const CLI::App* app, bool default_also, bool write_description,
                        std::string prefix) const override;

 private:
  const CLI::App* app_;
};

// Parses lucid-server's command line (and --config's file) into `app`.
// Returns -1 when the server should run; otherwise the exit code: 0 after
// --help or --version (printed to stdout), 2 after a usage or config error
// (printed to stderr as "lucid-server: <message>").
int parse_command_line(CLI::App& app, int argc, char** argv);

}  // namespace lucid::server
