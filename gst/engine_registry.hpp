// Process-wide named engines — the public C++ API for applications.
//
// Both arcly elements have an `engine` property (default "default"). Elements in
// one process that name the same engine share its streams. To use a configured
// engine (applications, cache bounds, limits) register it under a name *before*
// the pipelines that use it reach READY:
//
//   #include <gst/gst.h>
//   #include "engine_registry.hpp"   // dependency: arcly-gst
//
//   gst_init(&argc, &argv);
//   auto engine = arcly::Engine::builder()
//                     .application(arcly::AppSpec("live").gop_cache(600).subscribers(50))
//                     .build();
//   arcly::gst::register_engine("studio", engine);
//   // ... arclysink engine=studio stream=live/cam ...
//
// A name nobody registered gets, on first use, a default engine that accepts any
// application with the default AppSpec bounds (1024 frames / 64 MiB per GOP cache).
//
// The registry is attached to the GStreamer registry object, so the plugin
// (loaded with dlopen) and an application linking arcly-gst statically see the
// same map. gst_init() must have been called. All functions are thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "arcly/engine.hpp"

namespace arcly::gst {

inline constexpr const char* kDefaultEngineName = "default";

// Registers `engine` under `name`. Throws arcly::Error{InvalidArgument} for an
// empty name, a null engine, or a name already bound to another engine.
void register_engine(const std::string& name, std::shared_ptr<Engine> engine);
// Removes the name (streams of that engine keep running). Returns false if unknown.
bool unregister_engine(const std::string& name);
// The engine under `name`, or null.
std::shared_ptr<Engine> find_engine(const std::string& name);
// The engine under `name`, creating and registering a default one if needed.
// Throws arcly::Error{InvalidArgument} for an empty name.
std::shared_ptr<Engine> engine_for(const std::string& name);
// A fresh engine that accepts any application with default bounds.
std::shared_ptr<Engine> make_default_engine();
// Registered names, sorted.
std::vector<std::string> engine_names();

}  // namespace arcly::gst
