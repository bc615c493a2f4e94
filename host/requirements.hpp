// Which GStreamer elements a configuration needs, and which Debian package ships
// each one — so that a missing optional package is a clear problem at `arcly check`
// and start-up ("[record cams] format: element mp4mux is missing — install the Debian
// package gstreamer1.0-plugins-good"), never a parse or link error at run time.
//
// The table below names the package for every element arcly itself creates and for
// the usual ones in user launch lines; tests/deps proves scripts/debian-packages
// installs all of them.
#pragma once

#include <string>
#include <vector>

namespace arcly::host {

struct Config;

// " (Debian package P)" for an element we know, else "".
std::string package_hint(const std::string& element);

// Turns a gst_parse error message into one that names the missing element's
// package, when the message is about a missing element.
std::string explain_parse_error(const std::string& message);

// Problems ("[section] key: element E is missing — install the Debian package P")
// for every element the config needs that this machine's registry lacks.
std::vector<std::string> missing_elements(const Config& config);

}  // namespace arcly::host
