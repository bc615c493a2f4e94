#include "config_values.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace arcly::host::values {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

void say(std::string* why, std::string text) {
  if (why) *why = std::move(text);
}

// A plain non-negative decimal number ("12", "0.5"): no sign, no exponent, no hex.
std::optional<double> decimal(std::string_view s) {
  if (s.empty()) return std::nullopt;
  bool dot = false, digit = false;
  for (char c : s) {
    if (c == '.' && !dot) {
      dot = true;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      digit = true;
    } else {
      return std::nullopt;
    }
  }
  if (!digit) return std::nullopt;
  return std::strtod(std::string(s).c_str(), nullptr);
}

bool key_pattern_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
         c == '*' || c == '?';
}

// Glob match of `text` against `pattern` (* any run, ? one character).
bool glob(std::string_view pattern, std::string_view text) {
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// Whether two globs can match one common string (two-pointer search with memo-free
// recursion; patterns are short).
bool globs_meet(std::string_view a, std::string_view b) {
  if (a.empty() || b.empty()) {
    auto only_stars = [](std::string_view s) {
      return s.find_first_not_of('*') == std::string_view::npos;
    };
    return only_stars(a) && only_stars(b);
  }
  if (a[0] == '*') return globs_meet(a.substr(1), b) || globs_meet(a, b.substr(1));
  if (b[0] == '*') return globs_meet(a, b.substr(1)) || globs_meet(a.substr(1), b);
  if (a[0] == '?' || b[0] == '?' || a[0] == b[0]) return globs_meet(a.substr(1), b.substr(1));
  return false;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text, std::string* why) {
  const std::string_view t = trim(text);
  std::string_view number = t;
  double scale = 1000.0;  // to milliseconds
  for (auto [suffix, factor] :
       {std::pair{"ms", 1.0}, {"min", 60000.0}, {"s", 1000.0}, {"h", 3600000.0}}) {
    const std::string_view sfx(suffix);
    if (number.size() > sfx.size() && number.substr(number.size() - sfx.size()) == sfx) {
      number = trim(number.substr(0, number.size() - sfx.size()));
      scale = factor;
      break;
    }
  }
  auto v = decimal(number);
  if (!v) {
    say(why, "'" + std::string(t) +
                 "' is not a duration (seconds, e.g. 10 or 0.5; or with ms, s, min, h)");
    return std::nullopt;
  }
  const double ms = *v * scale;
  if (ms > 1e12) {
    say(why, "'" + std::string(t) + "' is too long a duration");
    return std::nullopt;
  }
  return std::chrono::milliseconds(static_cast<long long>(std::llround(ms)));
}

std::optional<std::uint64_t> parse_size(std::string_view text, std::string* why) {
  const std::string_view t = trim(text);
  std::string_view number = t;
  double scale = 1;
  if (!number.empty() && std::isalpha(static_cast<unsigned char>(number.back()))) {
    const char u = static_cast<char>(std::toupper(static_cast<unsigned char>(number.back())));
    const std::string_view units = "KMGT";
    const auto pos = units.find(u);
    if (pos == std::string_view::npos) {
      say(why, "'" + std::string(t) + "' is not a size (bytes with an optional K, M, G or T)");
      return std::nullopt;
    }
    scale = std::ldexp(1.0, 10 * static_cast<int>(pos + 1));
    number.remove_suffix(1);
  }
  auto v = decimal(number);
  if (!v || *v * scale > 1.8e19) {
    say(why, "'" + std::string(t) + "' is not a size (bytes with an optional K, M, G or T)");
    return std::nullopt;
  }
  return static_cast<std::uint64_t>(*v * scale);
}

std::optional<std::uint64_t> parse_count(std::string_view text, std::string* why, std::uint64_t min,
                                         std::uint64_t max) {
  const std::string_view t = trim(text);
  const bool digits = !t.empty() && t.find_first_not_of("0123456789") == std::string_view::npos;
  if (!digits || t.size() > 19) {
    say(why, "'" + std::string(t) + "' is not a whole number" +
                 (decimal(t) ? std::string(" (no fractions)") : std::string()));
    return std::nullopt;
  }
  const std::uint64_t v = std::strtoull(std::string(t).c_str(), nullptr, 10);
  if (v < min || v > max) {
    say(why, "'" + std::string(t) + "' is out of range (" + std::to_string(min) + " to " +
                 std::to_string(max) + ")");
    return std::nullopt;
  }
  return v;
}

std::optional<StreamKey> parse_key(std::string_view text, std::string* why) {
  return StreamKey::try_parse(trim(text), why);
}

std::optional<std::string> parse_key_pattern(std::string_view text, std::string* why) {
  const std::string t(trim(text));
  const auto slash = t.find('/');
  bool ok = slash != std::string::npos && slash > 0 && slash + 1 < t.size() &&
            t.find('/', slash + 1) == std::string::npos && t.find("..") == std::string::npos;
  for (std::size_t i = 0; ok && i < t.size(); ++i) ok = i == slash || key_pattern_char(t[i]);
  if (!ok) {
    say(why, "'" + t +
                 "' is not a stream key or a pattern like live/* (app/stream of letters, digits, . "
                 "_ - * ?)");
    return std::nullopt;
  }
  return t;
}

bool pattern_matches(const std::string& pattern, const std::string& key) {
  return glob(pattern, key);
}

bool patterns_overlap(const std::string& a, const std::string& b) {
  return globs_meet(a, b);
}

std::optional<ListenAddress> parse_listen(std::string_view text, std::string* why) {
  try {
    return ListenAddress::parse(trim(text));
  } catch (const std::exception& e) {
    say(why, e.what());
    return std::nullopt;
  }
}

std::optional<std::string> parse_choice(std::string_view text,
                                        const std::vector<std::string>& choices, std::string* why) {
  const std::string t(trim(text));
  std::string list;
  for (std::size_t i = 0; i < choices.size(); ++i) {
    if (choices[i] == t) return t;
    list += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + choices[i];
  }
  say(why, "'" + t + "' is not " + list);
  return std::nullopt;
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == ';' || text[i] == ',') {
      if (auto item = trim(text.substr(start, i - start)); !item.empty()) out.emplace_back(item);
      start = i + 1;
    }
  }
  return out;
}

std::string show_duration(std::chrono::nanoseconds d) {
  const double ms =
      static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()) /
      1000.0;
  char buf[48];
  if (ms != 0 && ms < 1000)
    std::snprintf(buf, sizeof buf, "%g ms", ms);
  else
    std::snprintf(buf, sizeof buf, "%g s", ms / 1000.0);
  return buf;
}

std::string show_size(std::uint64_t bytes) {
  static const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.4g %s", v, units[u]);
  return buf;
}

}  // namespace arcly::host::values
