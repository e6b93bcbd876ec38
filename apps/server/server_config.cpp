#include "server_config.hpp"

#include <toml++/toml.h>

#include <iostream>
#include <sstream>

namespace lucid::server {

namespace {

enum class Want { boolean, integer, number, text };

// What the flag's CLI11 type says its value is ("INT", "UINT:INT in [1 -
// 64]", "FLOAT", "TEXT", ...); flags (no value) want a boolean.
Want wanted(const CLI::Option& opt) {
  if (opt.get_expected_min() == 0) return Want::boolean;
  const std::string type = opt.get_type_name();
  if (type.rfind("INT", 0) == 0 || type.rfind("UINT", 0) == 0) return Want::integer;
  if (type.rfind("FLOAT", 0) == 0) return Want::number;
  return Want::text;
}

const char* want_name(Want w) {
  switch (w) {
    case Want::boolean: return "a boolean (true or false)";
    case Want::integer: return "an integer";
    case Want::number: return "a number";
    case Want::text: return "a string";
  }
  return "?";
}

[[noreturn]] void refuse(const toml::source_region& where, const std::string& key, const std::string& what) {
  std::ostringstream m;
  m << "config file";
  if (where.path) m << " " << *where.path;
  m << " line " << where.begin.line << ": key '" << key << "': " << what;
  throw CLI::ConfigError(m.str());
}

// A TOML string as the text format a scalar is written in.
std::string toml_quoted(const std::string& s) {
  std::ostringstream out;
  out << toml::value<std::string>(s);
  return out.str();
}

}  // namespace

std::vector<CLI::ConfigItem> TomlConfig::from_config(std::istream& input) const {
  toml::table table;
  try {
    table = toml::parse(input);
  } catch (const toml::parse_error& e) {
    std::ostringstream m;
    m << "config file line " << e.source().begin.line << ", column " << e.source().begin.column << ": "
      << e.description();
    throw CLI::ConfigError(m.str());
  }
  std::vector<CLI::ConfigItem> items;
  for (const auto& [key_node, node] : table) {
    const std::string key(key_node.str());
    const auto& where = key_node.source();
    const CLI::Option* opt = app_->get_option_no_throw("--" + key);
    if (!opt || !opt->get_configurable())
      refuse(where, key, "unknown key (the keys are lucid-server's long flags without '--', see --help)");
    if (node.is_table() || node.is_array()) refuse(where, key, std::string("must be ") + want_name(wanted(*opt)));
    const Want want = wanted(*opt);
    std::string value;
    switch (want) {
      case Want::boolean:
        if (!node.is_boolean()) refuse(where, key, std::string("must be ") + want_name(want));
        value = *node.value<bool>() ? "true" : "false";
        break;
      case Want::integer:
        if (!node.is_integer()) refuse(where, key, std::string("must be ") + want_name(want));
        value = std::to_string(*node.value<std::int64_t>());
        break;
      case Want::number:
        if (node.is_integer()) value = std::to_string(*node.value<std::int64_t>());
        else if (node.is_floating_point()) {
          std::ostringstream v;
          v.precision(17);
          v << *node.value<double>();
          value = v.str();
        } else refuse(where, key, std::string("must be ") + want_name(want));
        break;
      case Want::text:
        if (!node.is_string()) refuse(where, key, std::string("must be ") + want_name(want));
        value = *node.value<std::string>();
        break;
    }
    CLI::ConfigItem item;
    item.name = key;
    item.inputs = {value};
    items.push_back(std::move(item));
  }
  return items;
}

std::string TomlConfig::to_config(const CLI::App* app, bool default_also, bool write_description,
                                  std::string /*prefix*/) const {
  std::string out;
  for (const CLI::Option* opt : app->get_options()) {
    if (!opt->get_configurable() || opt->get_lnames().empty()) continue;
    std::string value;
    if (opt->count() > 0) {
      value = opt->results().empty() ? "true" : opt->results().back();
    } else if (default_also) {
      value = opt->get_default_str();
    }
    if (value.empty()) continue;
    if (write_description && !opt->get_description().empty()) out += "# " + opt->get_description() + "\n";
    const Want want = wanted(*opt);
    out += opt->get_lnames().front() + " = " + (want == Want::text ? toml_quoted(value) : value) + "\n";
  }
  return out;
}

int parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return -1;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "lucid-server: " << e.what() << "\n";
    if (dynamic_cast<const CLI::ConfigError*>(&e) == nullptr) std::cerr << "Run with --help for the options.\n";
    return 2;
  }
}

}  // namespace lucid::server
