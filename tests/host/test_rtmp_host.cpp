// The host's [rtmp NAME] section end to end: `arcly check` on good and broken
// sections (tokens never shown), and `arcly run` recording what ffmpeg publishes
// over RTMP, refusing a wrong token, and finalizing playable files on SIGINT.
#include "host_helpers.hpp"

using namespace host_testing;

namespace {
Process rtmp_publisher(int port, const std::string& path) {
  return Process({"ffmpeg",
                  "-loglevel",
                  "error",
                  "-re",
                  "-f",
                  "lavfi",
                  "-i",
                  "testsrc=size=320x240:rate=30",
                  "-f",
                  "lavfi",
                  "-i",
                  "sine",
                  "-t",
                  "30",
                  "-c:v",
                  "libx264",
                  "-preset",
                  "ultrafast",
                  "-g",
                  "30",
                  "-c:a",
                  "aac",
                  "-f",
                  "flv",
                  "rtmp://127.0.0.1:" + std::to_string(port) + "/" + path});
}
}  // namespace

START_TEST(check_reads_rtmp_sections_and_names_their_problems) {
  const std::string dir = scratch("rtmp-check");
  const std::string port = std::to_string(free_port());
  std::string out;
  int rc = run_arcly({"check", write_config(dir, "[rtmp in]\nlisten=:" + port +
                                                     "\nallow=live/*\ntokens=live/*:s3cretvalue\n"
                                                     "max-connections=50\nhandshake-timeout=5\n")},
                     &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out.c_str());
  ck_assert_msg(out.find("rtmp in: listen :" + port +
                         ", allow 1 pattern(s), 1 token(s), at most 50 "
                         "connections, publish within 5 s") != std::string::npos,
                "%s", out.c_str());
  ck_assert_msg(out.find("s3cretvalue") == std::string::npos, "a token leaked:\n%s", out.c_str());

  const std::vector<CheckCase> cases{
      {"[rtmp in]\nallow=live/*\n", "[rtmp in] listen: is required"},
      {"[rtmp in]\nlisten=nowhere\n", "[rtmp in] listen:"},
      {"[rtmp in]\nlisten=:" + port + "\ntokens=live/*\n",
       "[rtmp in] tokens: 'live/*…' should be PATTERN:TOKEN"},
      {"[rtmp in]\nlisten=:" + port + "\nallow=live/../x\n", "[rtmp in] allow:"},
      {"[rtmp in]\nlisten=:" + port + "\nhandshake-timeout=0\n",
       "[rtmp in] handshake-timeout: must be more than 0"},
      {"[rtmp in]\nlisten=:" + port + "\nspeed=fast\n", "[rtmp in] speed: unknown key"},
      {"[rtmp a]\nlisten=:" + port + "\n[rtmp b]\nlisten=127.0.0.1:" + port + "\n",
       "[rtmp b] listen: port " + port + " is already used by [rtmp a]"},
  };
  expect_check_problems(dir, cases);
  fs::remove_all(dir);
}
END_TEST

START_TEST(run_records_an_rtmp_publisher_and_refuses_a_wrong_token) {
  const std::string dir = scratch("rtmp-run");
  const int port = free_port();
  const std::string json = dir + "/stats.json";
  const std::string conf = write_config(
      dir, "[app live]\ncache-window=4\n[rtmp in]\nlisten=127.0.0.1:" + std::to_string(port) +
               "\nallow=live/*\ntokens=live/*:s3cretvalue\n"
               "[record all]\nkey=live/*\ndir=" +
               dir + "/rec\nsegment=3\n");
  Process arcly({arcly_bin(), "run", conf, "--stats-json", json});
  ck_assert(wait_for_text(json, "\"protocol\":\"rtmp\",\"state\":\"listening\"", 30s));
  Process bad = rtmp_publisher(port, "live/cam?token=badt0ken");
  ck_assert_int_ne(bad.wait(), 0);
  ck_assert(wait_for_text(json, "\"rejected\":1", 30s));
  Process good = rtmp_publisher(port, "live/cam?token=s3cretvalue");
  ck_assert(wait_for_text(json, "live/cam/", 30s));  // a segment of it opened
  ck_assert(wait_for_text(json, "\"segments\":2", 30s));
  arcly.stop(SIGINT);
  const std::string text = read_all(json);
  ck_assert_msg(
      text.find("s3cretvalue") == std::string::npos && text.find("badt0ken") == std::string::npos,
      "a token leaked into the stats");
  ck_assert(text.find("wrong or missing token for stream live/cam") != std::string::npos);
  const auto files = files_under(dir + "/rec/live/cam", ".mp4");
  ck_assert(!files.empty());
  for (const auto& f : files) {
    auto p = ffprobe(f);
    ck_assert_msg(p.ok && p.video && p.audio && p.first_is_key && p.duration > 0.5,
                  "%s: ok=%d video=%d audio=%d key=%d duration=%f", f.c_str(), p.ok, p.video,
                  p.audio, p.first_is_key, p.duration);
    ck_assert_msg(discover(f) > 0.5, "GstDiscoverer cannot play %s", f.c_str());
  }
  fs::remove_all(dir);
}
END_TEST

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  gst_pb_utils_init();
  return testing::run_suite("rtmp_host",
                            {check_reads_rtmp_sections_and_names_their_problems,
                             run_records_an_rtmp_publisher_and_refuses_a_wrong_token},
                            300);
}
