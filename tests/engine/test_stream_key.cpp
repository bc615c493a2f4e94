// StreamKey: what passes, what is refused, and that refusals quote the key.
#include "check_main.hpp"

using arcly::Errc;
using arcly::StreamKey;

START_TEST(valid_keys_parse) {
  auto k = StreamKey::parse("live/cam-1_A.b");
  ck_assert_text(k.app(), "live");
  ck_assert_text(k.stream(), "cam-1_A.b");
  ck_assert_text(k.str(), "live/cam-1_A.b");
  ck_assert(StreamKey("live", "cam") == StreamKey::parse("live/cam"));
  ck_assert(StreamKey::parse(std::string(64, 'a') + "/" + std::string(64, 'b')).app().size() == 64);
  ck_assert(StreamKey::parse("a/..b").stream() == "..b");  // dots inside a name are fine
}
END_TEST

START_TEST(invalid_keys_are_refused_with_the_key_quoted) {
  const char* bad[] = {"",         "live",       "live/",       "/cam",    "live/cam/x", "../cam",
                       "live/..",  "live/.",     "./cam",       "li ve/c", "live/c\\d",  "live/c:d",
                       "live/%2e", "live/ca\tm", "live/caméra", "live/c\n"};
  for (const char* text : bad) {
    ck_assert_throws_code(StreamKey::parse(text), Errc::InvalidKey, "'" + std::string(text) + "'");
  }
  ck_assert_throws_code(StreamKey::parse("live/" + std::string(65, 'x')), Errc::InvalidKey,
                        "longer than 64");
  ck_assert_throws_code(StreamKey("a/b", "c"), Errc::InvalidKey, "a/b/c");
}
END_TEST

START_TEST(messages_say_what_a_valid_key_looks_like) {
  std::string why;
  ck_assert(!StreamKey::try_parse("live/../../etc", &why));
  ck_assert_msg(why.find("app/stream") != std::string::npos, "%s", why.c_str());
  ck_assert(StreamKey::try_parse("live/ok").has_value());
}
END_TEST

START_TEST(keys_are_hashable_and_ordered) {
  std::hash<StreamKey> h;
  ck_assert(h(StreamKey::parse("a/b")) == h(StreamKey("a", "b")));
  ck_assert(StreamKey::parse("a/b") < StreamKey::parse("a/c"));
}
END_TEST

int main() {
  return testing::run_suite(
      "stream_key", {valid_keys_parse, invalid_keys_are_refused_with_the_key_quoted,
                     messages_say_what_a_valid_key_looks_like, keys_are_hashable_and_ordered});
}
