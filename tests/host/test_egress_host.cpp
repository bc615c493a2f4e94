// The host's [rtsp-server] and [srt-server] sections end to end: `arcly check` on
// good and broken sections (passwords and tokens never shown), and `arcly run`
// serving a stream it ingests to real network readers — ffprobe over RTSP (TCP)
// with a user's credentials, a wrong password refused (401, logged with the peer
// and without the password), an unknown key refused (404), ffprobe over SRT by
// streamid — and a SIGHUP that changes [rtsp-server] restarting it with the new
// rules.
#include <algorithm>
#include <vector>

#include "host_helpers.hpp"

using namespace host_testing;

namespace {

const char* const kCamera =
    "[pipeline cam]\nkey=live/cam\nsource=videotestsrc is-live=true ! "
    "video/x-raw,width=320,height=240,framerate=30/1 ! x264enc tune=zerolatency "
    "speed-preset=ultrafast key-int-max=60  audiotestsrc is-live=true ! avenc_aac\n";

// ffprobe's codec names for the streams of `url`, sorted ("aac,h264"); `rc` its exit code.
std::string probe_codecs(const std::string& url, int* rc, const std::string& extra = "") {
  std::string out;
  FILE* f = popen(("timeout 30 ffprobe -v error " + extra +
                   " -show_entries stream=codec_name -of csv=p=0 '" + url + "' 2>/dev/null")
                      .c_str(),
                  "r");
  char buf[256];
  while (fgets(buf, sizeof buf, f)) out += buf;
  *rc = pclose(f);
  // Sorted: the SDP lists the tracks in the order the reader's source exposed them.
  std::vector<std::string> codecs;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) codecs.push_back(line);
  }
  std::sort(codecs.begin(), codecs.end());
  std::string joined;
  for (const std::string& c : codecs) joined += (joined.empty() ? "" : ",") + c;
  return joined;
}

std::string rtsp_url(int port, const std::string& user_password, const std::string& key) {
  return "rtsp://" + user_password + "127.0.0.1:" + std::to_string(port) + "/" + key;
}

}  // namespace

START_TEST(check_reads_egress_sections_and_names_their_problems) {
  const std::string dir = scratch("egress-check");
  const std::string port = std::to_string(free_port());
  std::string out;
  int rc = run_arcly(
      {"check", write_config(dir, "[rtsp-server]\nlisten=:" + port +
                                      "\nuser.alice=Pa55word-alice\nread.alice=live/*, cam/*\n"
                                      "start=keyframe\ntransports=tcp\nmax-readers=20\n"
                                      "media=shared\n"
                                      "[srt-server]\nlisten=:" +
                                      port +
                                      "\npassphrase=0123456789abcdef\n"
                                      "read-tokens=live/*:T0kenValue\npublish=no\n")},
      &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out.c_str());
  ck_assert_msg(
      out.find("rtsp-server: rtsp://:" + port +
               "/APP/STREAM, start at the cached keyframe, tcp only, live-edge readers share a "
               "media (tcp), user alice reads "
               "live/*, cam/*, no anonymous reading, at most 20 readers") != std::string::npos,
      "%s", out.c_str());
  ck_assert_msg(out.find("srt-server: srt://:" + port +
                         ", passphrase set, read * (1 token(s)), publish off") != std::string::npos,
                "%s", out.c_str());
  for (const char* secret : {"Pa55word-alice", "0123456789abcdef", "T0kenValue"})
    ck_assert_msg(out.find(secret) == std::string::npos, "a secret leaked:\n%s", out.c_str());

  const std::string users = "user.alice=pw12345\n";
  const std::vector<CheckCase> cases{
      {"[rtsp-server]\nlisten=nowhere\n" + users, "[rtsp-server] listen:"},
      {"[rtsp-server]\nlisten=:" + port + "\n",
       "[rtsp-server] serves nobody: add user.NAME = PASSWORD, or anonymous-read = PATTERNS"},
      {"[rtsp-server]\n" + users + "read.bob=live/*\n",
       "[rtsp-server] read.bob: names no user (add user.bob = PASSWORD)"},
      {"[rtsp-server]\n" + users + "start=soon\n",
       "[rtsp-server] start: 'soon' is not live-edge or keyframe"},
      {"[rtsp-server]\n" + users + "transports=sctp\n", "[rtsp-server] transports: 'sctp' is not"},
      {"[rtsp-server]\n" + users + "auth=ntlm\n", "[rtsp-server] auth: 'ntlm' is not"},
      {"[rtsp-server]\n" + users + "media=pooled\n",
       "[rtsp-server] media: 'pooled' is not per-reader or shared"},
      {"[rtsp-server]\n" + users + "media=shared\ntransports=udp\n",
       "[rtsp-server] media shared: its readers are served over TCP only"},
      {"[rtsp-server]\n" + users + "read.alice=live/../x\n", "[rtsp-server] read.alice:"},
      {"[rtsp-server]\nuser.alice=\n", "[rtsp-server] user alice: empty password"},
      {"[rtsp-server]\n" + users + "speed=fast\n", "[rtsp-server] speed: unknown key"},
      {"[srt-server]\npassphrase=short\n",
       "[srt-server] passphrase: SRT needs 10 to 79 characters"},
      {"[srt-server]\nread-tokens=live/*\n",
       "[srt-server] read-tokens: 'live/*…' should be PATTERN:TOKEN"},
      {"[srt-server]\npublish=maybe\n", "[srt-server] publish: 'maybe' is not yes or no"},
      {"[rtmp in]\nlisten=:" + port + "\n[rtsp-server]\nlisten=127.0.0.1:" + port + "\n" + users,
       "[rtsp-server] listen: port " + port + " is already used by [rtmp in]"},
      {"[srt in]\nlisten=srt://:" + port + "\n[srt-server]\nlisten=:" + port + "\n",
       "[srt-server] listen: port " + port + " is already used by [srt in]"},
  };
  expect_check_problems(dir, cases);
  fs::remove_all(dir);
}
END_TEST

START_TEST(run_serves_rtsp_and_srt_readers_refuses_bad_ones_and_reloads) {
  const std::string dir = scratch("egress-run");
  const int rtsp = free_port();
  const int srt = free_port(SOCK_DGRAM);
  const std::string json = dir + "/stats.json";
  const std::string head =
      std::string(kCamera) + "[srt-server]\nlisten=127.0.0.1:" + std::to_string(srt) +
      "\npublish=no\n[rtsp-server]\nlisten=127.0.0.1:" + std::to_string(rtsp) + "\n";
  const std::string conf =
      write_config(dir, head + "user.alice=Pa55word-alice\nread.alice=live/*\n");
  Service arcly({arcly_bin(), "run", conf, "--stats-json", json});
  ck_assert_msg(arcly.wait_for("[rtsp-server] serving every stream", 30s), "%s",
                arcly.text().c_str());
  ck_assert_msg(wait_for_text(json, "\"key\":\"live/cam\"", 30s), "%s", arcly.text().c_str());

  // A user with its credentials, over TCP-interleaved RTSP: video and audio.
  int rc = 0;
  std::string codecs =
      probe_codecs(rtsp_url(rtsp, "alice:Pa55word-alice@", "live/cam"), &rc, "-rtsp_transport tcp");
  ck_assert_msg(rc == 0 && codecs == "aac,h264", "rc %d, streams '%s'\n%s", rc, codecs.c_str(),
                arcly.text().c_str());
  // A wrong password: 401, counted, logged with the peer, the password nowhere.
  codecs =
      probe_codecs(rtsp_url(rtsp, "alice:Wr0ngPassw0rd@", "live/cam"), &rc, "-rtsp_transport tcp");
  ck_assert_msg(rc != 0 && codecs.empty(), "a wrong password read '%s'", codecs.c_str());
  ck_assert_msg(wait_for_text(json, "\"refused_unauthorized\":1", 30s), "%s",
                read_all(json).c_str());
  // A key nobody publishes: 404.
  codecs = probe_codecs(rtsp_url(rtsp, "alice:Pa55word-alice@", "live/nobody"), &rc,
                        "-rtsp_transport tcp");
  ck_assert_msg(rc != 0, "an unpublished key was served");
  ck_assert_msg(wait_for_text(json, "\"refused_not_found\":1", 30s), "%s", read_all(json).c_str());
  ck_assert_msg(arcly.text().find("127.0.0.1") != std::string::npos, "%s", arcly.text().c_str());

  // SRT by streamid (the plain form; the #!:: form is the egress suite's), on the
  // host's one SRT port.
  codecs = probe_codecs("srt://127.0.0.1:" + std::to_string(srt) + "?streamid=live/cam", &rc);
  ck_assert_msg(rc == 0 && codecs.find("h264") != std::string::npos, "rc %d, streams '%s'\n%s", rc,
                codecs.c_str(), arcly.text().c_str());
  // A key nobody publishes is refused in the handshake, and counted.
  codecs = probe_codecs("srt://127.0.0.1:" + std::to_string(srt) + "?streamid=live/nobody", &rc);
  ck_assert_msg(rc != 0, "SRT served an unpublished key");
  ck_assert_msg(wait_for_text(json, "\"refused_not_found\":1,\"refused_forbidden\"", 30s), "%s",
                read_all(json).c_str());

  // Reload: [rtsp-server] now lets anyone read live/* from a shared media; the
  // camera keeps running.
  write_config(dir, head + "anonymous-read=live/*\nmedia=shared\n");
  arcly.signal(SIGHUP);
  ck_assert_msg(arcly.wait_for("restarted [rtsp-server]", 60s), "%s", arcly.text().c_str());
  ck_assert_msg(arcly.wait_for("[rtsp-server] serving every stream", 30s, 2), "%s",
                arcly.text().c_str());
  codecs = probe_codecs(rtsp_url(rtsp, "", "live/cam"), &rc, "-rtsp_transport tcp");
  ck_assert_msg(rc == 0 && codecs == "aac,h264", "after reload: rc %d, streams '%s'\n%s", rc,
                codecs.c_str(), arcly.text().c_str());
  // A client that asks for UDP first is told 461 by the shared media and retries over TCP.
  codecs = probe_codecs(rtsp_url(rtsp, "", "live/cam"), &rc);
  ck_assert_msg(rc == 0 && codecs == "aac,h264", "udp first: rc %d, streams '%s'\n%s", rc,
                codecs.c_str(), arcly.text().c_str());
  ck_assert_msg(wait_for_text(json, "\"dropped_slow\":0", 30s), "%s", read_all(json).c_str());

  arcly.signal(SIGTERM);
  const int status = arcly.wait();
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d\n%s", status,
                arcly.text().c_str());
  const std::string log = arcly.text() + read_all(json);
  for (const char* secret : {"Pa55word-alice", "Wr0ngPassw0rd"})
    ck_assert_msg(log.find(secret) == std::string::npos, "%s leaked:\n%s", secret, log.c_str());
  fs::remove_all(dir);
}
END_TEST

START_TEST(run_refuses_to_start_when_the_rtsp_port_is_taken) {
  const std::string dir = scratch("egress-taken");
  // Hold the port with a listening socket for the whole test.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ck_assert_int_eq(listen(fd, 1), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string port = std::to_string(ntohs(a.sin_port));
  std::string out;
  const int rc = run_arcly(
      {"run",
       write_config(dir, std::string(kCamera) + "[rtsp-server]\nlisten=127.0.0.1:" + port +
                             "\nanonymous-read=live/*\n"),
       "--for", "20"},
      &out);
  close(fd);
  ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out.c_str());
  ck_assert_msg(
      out.find("arcly: [rtsp-server]") != std::string::npos && out.find(port) != std::string::npos,
      "%s", out.c_str());
  fs::remove_all(dir);
}
END_TEST

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  gst_pb_utils_init();
  return testing::run_suite("egress_host",
                            {check_reads_egress_sections_and_names_their_problems,
                             run_serves_rtsp_and_srt_readers_refuses_bad_ones_and_reloads,
                             run_refuses_to_start_when_the_rtsp_port_is_taken},
                            300);
}
