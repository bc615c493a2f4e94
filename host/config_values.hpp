// The kinds of value a configuration holds, one type each — shared by the config
// file loader and the HTTP API, so "10", "1.5", "64M", "live/*" and ":8554" mean the
// same everywhere and are refused with the same words.
//
// Every parse function takes the text as written and returns the value, or nullopt
// and a reason that quotes the text and says what was expected ("'2.5' is not a
// whole number"). None of them changes what was written: a value out of range is
// refused, never clamped.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arcly/stream_key.hpp"
#include "arcly/tcp_server.hpp"

namespace arcly::host::values {

// Seconds, decimals allowed ("0.5", "30"); optional unit suffix ms, s, min, h.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text, std::string* why);

// Bytes, with an optional K, M, G or T (powers of 1024): "600K", "50G", "1048576".
std::optional<std::uint64_t> parse_size(std::string_view text, std::string* why);

// A whole number from `min` to `max`.
std::optional<std::uint64_t> parse_count(std::string_view text, std::string* why,
                                         std::uint64_t min = 0, std::uint64_t max = UINT32_MAX);

// A stream key "app/stream".
std::optional<StreamKey> parse_key(std::string_view text, std::string* why);

// A key or a glob over keys ("live/*", "live/cam?"): app/stream of [A-Za-z0-9._-*?],
// no "..".
std::optional<std::string> parse_key_pattern(std::string_view text, std::string* why);
// Whether `key` matches `pattern` (glob: * and ?).
bool pattern_matches(const std::string& pattern, const std::string& key);
// Whether some key could match both patterns.
bool patterns_overlap(const std::string& a, const std::string& b);

// "HOST:PORT", ":PORT" (every address), "[v6]:PORT": the engine's own type, so the
// config, the TCP accept loop and the servers read addresses alike.
using ListenAddress = arcly::ListenAddress;
std::optional<ListenAddress> parse_listen(std::string_view text, std::string* why);

// One of `choices`.
std::optional<std::string> parse_choice(std::string_view text,
                                        const std::vector<std::string>& choices, std::string* why);

// A list separated by ';' or ',' (empty items dropped, items trimmed).
std::vector<std::string> split_list(std::string_view text);

// Durations as people read them: "10 s", "1.5 s", "250 ms".
std::string show_duration(std::chrono::nanoseconds d);
// Sizes as people read them: "64 MiB", "600 KiB", "17 bytes".
std::string show_size(std::uint64_t bytes);

}  // namespace arcly::host::values
