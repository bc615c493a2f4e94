// Ingest building blocks: URL handling and redaction, backoff, SRT streamids.
#include <gst/gst.h>

#include "../engine/check_main.hpp"
#include "backoff.hpp"
#include "rtsp_worker.hpp"
#include "source_worker.hpp"
#include "srt_worker.hpp"
#include "url.hpp"

using namespace std::chrono_literals;
using namespace arcly::ingest;

START_TEST(urls_split_credentials_and_redact_them) {
  auto u = parse_url("rtsp://admin:s%40cret@10.0.0.5:554/stream1?x=1");
  ck_assert_text(u.user, "admin");
  ck_assert_text(u.password, "s@cret");
  ck_assert_text(u.without_credentials(), "rtsp://10.0.0.5:554/stream1?x=1");
  ck_assert_text(u.redacted(), "rtsp://***@10.0.0.5:554/stream1?x=1");
  ck_assert_text(parse_url("srt://:9000").host, "");
  ck_assert_int_eq(parse_url("srt://:9000").port, 9000);
  ck_assert_text(parse_url("rtsp://[::1]:8554/a").host, "::1");
  ck_assert_text(redact("failed: rtsp://u:p@h/x and rtsp://h2/y"),
                 "failed: rtsp://***@h/x and rtsp://h2/y");
  // A password typed with spaces, unencoded, is hidden whole.
  ck_assert_text(redact("could not open rtsp://admin:my secret pw@cam:554/live: 401"),
                 "could not open rtsp://***@cam:554/live: 401");
  // Secrets in a query or a streamid are hidden too; their keys stay readable.
  ck_assert_text(redact("srt://:9000 refused 'srt://h:1?latency=200&passphrase=0123456789ab'"),
                 "srt://:9000 refused 'srt://h:1?latency=200&passphrase=***'");
  ck_assert_text(redact("streamid #!::r=live/cam,m=request,token=T0ken from 10.0.0.9"),
                 "streamid #!::r=live/cam,m=request,token=*** from 10.0.0.9");
  ck_assert_text(parse_url("srt://h:9000?passphrase=0123456789ab&mode=caller").redacted(),
                 "srt://h:9000?passphrase=***&mode=caller");
  ck_assert_text(redact("mytoken=abc"), "mytoken=abc");  // only whole field names
}
END_TEST

START_TEST(bad_urls_are_refused_without_showing_the_password) {
  ck_assert_throws_code(parse_url("not a url"), arcly::Errc::InvalidArgument, "scheme://");
  ck_assert_throws_code(parse_url("rtsp://u:topsecret@h:99999/x"), arcly::Errc::InvalidArgument,
                        "rtsp://***@h:99999/x");
  try {
    parse_url("rtsp://u:topsecret@h:99999/x");
  } catch (const arcly::Error& e) {
    ck_assert(std::string(e.what()).find("topsecret") == std::string::npos);
  }
  ck_assert_throws_code(RtspWorker({}, {"http://h/x"}), arcly::Errc::InvalidArgument, "rtsp://");
  RtspSettings bad_transport{"rtsp://h/x"};
  bad_transport.transport = "carrier-pigeon";
  ck_assert_throws_code(RtspWorker({}, bad_transport), arcly::Errc::InvalidArgument, "transport");
}
END_TEST

START_TEST(backoff_doubles_with_jitter_up_to_the_max_and_resets) {
  Backoff b(100ms, 1000ms, 7);
  std::vector<long> d;
  for (int i = 0; i < 8; ++i) d.push_back(b.next().count());
  ck_assert_int_ge(d[0], 80);
  ck_assert_int_le(d[0], 120);
  ck_assert_int_ge(d[3], 640);  // 800 ± 20 %
  ck_assert_int_le(d[7], 1200);
  ck_assert_int_ge(d[7], 800);
  b.reset();
  ck_assert_int_le(b.next().count(), 120);
}
END_TEST

START_TEST(streamids_in_every_form) {
  auto a = parse_stream_id("#!::r=live/cam,m=publish,u=bob,token=t1,x=y");
  ck_assert_text(a.key->str(), "live/cam");
  ck_assert_text(a.mode, "publish");
  ck_assert_text(a.user, "bob");
  ck_assert_text(a.token, "t1");
  ck_assert_text(parse_stream_id("live/cam").key->str(), "live/cam");
  ck_assert(!parse_stream_id("").key);
  ck_assert_text(parse_stream_id("#!::m=request,r=a/b").mode, "request");
  ck_assert_throws_code(parse_stream_id("#!::r=../etc"), arcly::Errc::InvalidKey, "../etc");
  ck_assert_throws_code(parse_stream_id("#!::garbage"), arcly::Errc::InvalidArgument, "garbage");
}
END_TEST

START_TEST(key_patterns_glob) {
  ck_assert(key_matches("*", "live/cam"));
  ck_assert(key_matches("live/*", "live/cam"));
  ck_assert(!key_matches("live/*", "vod/cam"));
  ck_assert(key_matches("live/cam?", "live/cam7"));
  ck_assert(!key_matches("live/cam?", "live/cam"));
  ck_assert(key_matches(
      "*",
      "*a*b"));  // a literal '*' in the text does not disarm the wildcard (found by fuzz-stream_id)
  ck_assert(key_matches("live/*", "live/*x"));
  ck_assert(key_matches("*/door*", "site1/door-east"));
}
END_TEST

START_TEST(srt_settings_are_checked) {
  SrtSettings s{"srt://:9000"};
  s.passphrase = "short";
  ck_assert_throws_code(SrtWorker({}, s), arcly::Errc::InvalidArgument, "passphrase");
  SrtSettings k{"srt://:9000"};
  k.pbkeylen = 12;
  ck_assert_throws_code(SrtWorker({}, k), arcly::Errc::InvalidArgument, "pbkeylen");
  SrtSettings c{"srt://:9000"};
  c.listener = false;
  ck_assert_throws_code(SrtWorker({}, c), arcly::Errc::InvalidArgument, "host");
}
END_TEST

START_TEST(srt_listener_vets_callers) {
  SrtSettings s{"srt://:9000"};
  s.allow = {"live/*"};
  s.tokens = {{"live/vip*", "letmein"}};
  SrtWorker w({}, s);
  ck_assert_text(w.vet_caller("#!::r=live/cam,m=publish"), "");
  ck_assert(w.vet_caller("#!::r=vod/cam,m=publish").find("not in the allowed") !=
            std::string::npos);
  ck_assert(w.vet_caller("#!::r=live/cam,m=request").find("m=request") != std::string::npos);
  ck_assert(w.vet_caller("#!::r=live/vip1").find("token") != std::string::npos);
  ck_assert_text(w.vet_caller("#!::r=live/vip1,token=letmein"), "");
  ck_assert(w.vet_caller("").find("no stream key") != std::string::npos);
  ck_assert(w.vet_caller("live/../x").find("invalid stream key") != std::string::npos);
  ck_assert_uint_eq(w.stats().rejected, 5);
}
END_TEST

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  return testing::run_suite(
      "ingest-units",
      {urls_split_credentials_and_redact_them, bad_urls_are_refused_without_showing_the_password,
       backoff_doubles_with_jitter_up_to_the_max_and_resets, streamids_in_every_form,
       key_patterns_glob, srt_settings_are_checked, srt_listener_vets_callers});
}
