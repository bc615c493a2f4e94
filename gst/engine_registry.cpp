// Process-wide named engines (see engine_registry.hpp). The map hangs off the
// GstRegistry singleton as object data so every copy of this code in the process
// (the dlopen'ed plugin, an application linking arcly-gst) shares one map.
#include "engine_registry.hpp"

#include <gst/gst.h>

#include <map>
#include <mutex>

#include "arcly/error.hpp"

namespace arcly::gst {
namespace {

constexpr const char* kDataKey = "arcly-named-engines-v1";

struct Registry {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<Engine>> engines;
};

void destroy_registry(gpointer data) {
  delete static_cast<Registry*>(data);
}

Registry& registry() {
  GObject* anchor = G_OBJECT(gst_registry_get());
  if (auto* r = static_cast<Registry*>(g_object_get_data(anchor, kDataKey))) return *r;
  auto* fresh = new Registry;
  // Compare-and-set: whoever loses the race uses the winner's map.
  if (g_object_replace_data(anchor, kDataKey, nullptr, fresh, destroy_registry, nullptr))
    return *fresh;
  delete fresh;
  return *static_cast<Registry*>(g_object_get_data(anchor, kDataKey));
}

void check_name(const std::string& name) {
  if (name.empty())
    throw Error(Errc::InvalidArgument,
                "engine name must not be empty (the default is \"default\")");
}

}  // namespace

std::shared_ptr<Engine> make_default_engine() {
  return Engine::builder().accept_any_application().build();
}

void register_engine(const std::string& name, std::shared_ptr<Engine> engine) {
  check_name(name);
  if (!engine)
    throw Error(Errc::InvalidArgument, "cannot register a null engine as \"" + name + "\"");
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  auto [it, inserted] = r.engines.try_emplace(name, engine);
  if (!inserted && it->second != engine)
    throw Error(Errc::InvalidArgument,
                "engine \"" + name + "\" is already registered (unregister it first)");
}

bool unregister_engine(const std::string& name) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  return r.engines.erase(name) > 0;
}

std::shared_ptr<Engine> find_engine(const std::string& name) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.engines.find(name);
  return it == r.engines.end() ? nullptr : it->second;
}

std::shared_ptr<Engine> engine_for(const std::string& name) {
  check_name(name);
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  if (auto it = r.engines.find(name); it != r.engines.end()) return it->second;
  auto engine = make_default_engine();
  r.engines.emplace(name, engine);
  return engine;
}

std::vector<std::string> engine_names() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, engine] : r.engines) names.push_back(name);
  return names;
}

}  // namespace arcly::gst
