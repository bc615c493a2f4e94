// The arcly host program end to end: the real `arcly` binary against a
// gst-rtsp-server camera and an ffmpeg SRT caller; recordings checked with
// GstDiscoverer and ffprobe; SIGINT, SIGKILL, camera restarts in and past grace,
// retention, an unwritable directory, and `arcly check` on broken configs.
#include "host_helpers.hpp"

using namespace host_testing;

START_TEST(check_lists_every_problem_with_its_section_and_key) {
  const std::string dir = scratch("check");
  struct Case {
    const char* config;
    const char* expected;
  } cases[] = {
      {"[camera x]\nurl=rtsp://h/x\n", "[camera x] unknown section type 'camera'"},
      {"[rtsp cam]\nurl=rtsp://h/x\nkey=live/cam\ncolour=blue\n", "[rtsp cam] colour: unknown key"},
      {"[rtsp cam]\nurl=rtsp://h/x\nkey=live/../etc\n",
       "[rtsp cam] key: invalid stream key 'live/../etc'"},
      {"[rtsp cam]\nurl=http://h/x\nkey=live/cam\n",
       "[rtsp cam] url: 'http://h/x' is not an rtsp://"},
      {"[rtsp cam]\nurl=rtsp://u:secret@h:99999/x\nkey=live/cam\n",
       "[rtsp cam] url: invalid URL 'rtsp://***@h:99999/x'"},
      {"[rtsp cam]\nurl=rtsp://h/x\nkey=live/cam\nlatency=soon\n",
       "[rtsp cam] latency: 'soon' is not a whole number"},
      {"[rtsp cam]\nkey=live/cam\n", "[rtsp cam] url: is required"},
      {"[app live]\ncache-window=2\n[record r]\nkey=live/*\npre-roll=5\n",
       "[record r] pre-roll: 5"},
      {"[srt a]\nlisten=srt://:9000\n[srt b]\nlisten=srt://:9000\n",
       "[srt b] listen: port 9000 is already used by [srt a]"},
      {"[record r]\nkey=live/*\nformat=avi\n", "[record r] format: 'avi' is not mp4, mkv or ts"},
      {"[output o]\nkey=live/cam\npipeline=nosuchelement ! fakesink\n",
       "[output o] pipeline: is not valid"},
      {"[rtsp a]\nurl=rtsp://h/a\nkey=live/cam\n[rtsp b]\nurl=rtsp://h/b\nkey=live/cam\n",
       "key: live/cam is already published by [rtsp a]"},
      // Duplicates are not merged silently: both line numbers.
      {"[rtsp cam1]\nurl=rtsp://h/a\nkey=live/a\n[rtsp cam1]\nurl=rtsp://h/b\nkey=live/b\n",
       "[rtsp cam1] appears twice (lines 1 and 4)"},
      {"[rtsp cam1]\nurl=rtsp://h/a\nkey=live/a\nkey=live/b\n",
       "[rtsp cam1] key: set twice (lines 3 and 4)"},
      // Counts are whole numbers; nothing written is rounded.
      {"[app live]\ncache-frames=2.5\n", "[app live] cache-frames: '2.5' is not a whole number"},
      {"[app live]\nmax-subscribers=-1\n",
       "[app live] max-subscribers: '-1' is not a whole number"},
      // Two recorders of the same key into one dir would delete each other's files.
      {"[app live]\ncache-window=4\n[pipeline p]\nkey=live/a\nsource=videotestsrc ! x264enc\n"
       "[record r]\nkey=live/*\ndir=/tmp/same\n[record q]\nkey=live/a\ndir=/tmp/same\n",
       "[record q] dir: [record r] also records keys matching both live/* and live/a into "
       "/tmp/same"},
      // A missing [app] is named as such, not "[app live] (0 s)".
      {"[record r]\nkey=live/*\npre-roll=5\n",
       "cache window of application live (no [app live] section: its defaults) (0 s)"},
      {"[pipeline p]\nkey=live/p\nsource=videotestsrc ! "
       "x264enc\nbackoff-initial=40\nbackoff-max=30\n",
       "[pipeline p] backoff-initial: 40 s is more than backoff-max (30 s)"},
      // Pre-roll the cache's byte bound cannot hold (the cache window alone would pass).
      {"[app live]\ncache-window=30\ncache-bytes=1M\n[pipeline p]\nkey=live/p\nsource=videotestsrc "
       "! x264enc\n"
       "[record r]\nkey=live/*\npre-roll=20\n",
       "[record r] pre-roll: cache-bytes of [app live] = 1 MiB holds 20 s + a GOP only below 381 "
       "kbit/s"},
      {"[app live]\ncache-window=30\ncache-bytes=8M\n[pipeline p]\nkey=live/p\n"
       "source=videotestsrc ! x264enc bitrate=4000\n[record r]\nkey=live/*\npre-roll=20\n",
       "but the source states 4000 kbit/s; raise cache-bytes"},
      {"[app live]\ncache-window=30\ncache-frames=100\n[pipeline "
       "p]\nkey=live/p\nsource=videotestsrc ! x264enc\n"
       "[record r]\nkey=live/*\npre-roll=20\n",
       "cache-frames of [app live] is 100"},
  };
  for (const auto& c : cases) {
    std::string out;
    const int rc = run_arcly({"check", write_config(dir, c.config)}, &out);
    ck_assert_msg(rc == 1, "exit %d for:\n%s\n%s", rc, c.config, out.c_str());
    ck_assert_msg(out.find(c.expected) != std::string::npos, "expected '%s' in:\n%s", c.expected,
                  out.c_str());
    ck_assert_msg(out.find("secret") == std::string::npos, "a password leaked:\n%s", out.c_str());
  }
  // What only check looks at: an unwritable dir (with the OS reason), a port
  // another process holds ("address in use").
  {
    std::ofstream(dir + "/plainfile") << "x";
    std::string out;
    const int rc = run_arcly(
        {"check", write_config(dir, "[record r]\nkey=live/*\ndir=" + dir + "/plainfile/rec\n")},
        &out);
    ck_assert_msg(rc == 1 &&
                      out.find("[record r] dir: " + dir + "/plainfile/rec cannot be written") !=
                          std::string::npos &&
                      out.find("Not a directory") != std::string::npos,
                  "%s", out.c_str());
    const int busy = socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    int off = 0;
    setsockopt(busy, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    ck_assert_int_eq(bind(busy, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(busy, reinterpret_cast<sockaddr*>(&a), &len);
    const std::string port = std::to_string(ntohs(a.sin6_port));
    const int rc2 =
        run_arcly({"check", write_config(dir, "[srt in]\nlisten=srt://:" + port + "\n")}, &out);
    ck_assert_msg(rc2 == 1 && out.find("[srt in] listen: UDP port " + port +
                                       " cannot be used: address in use") != std::string::npos,
                  "%s", out.c_str());
    close(busy);
  }
  // Warnings do not refuse the file; the summary shows what decides disk use and exposure.
  {
    std::string out;
    const int rc = run_arcly(
        {"check",
         write_config(dir,
                      "[app live]\ncache-window=4\n"
                      "[srt in]\nlisten=srt://:" +
                          std::to_string(free_port(SOCK_DGRAM)) +
                          "\npassphrase=0123456789ab\nallow=live/*\n"
                          "[record r]\nkey=other/*\nmax-age=3600\nmax-bytes=2G\njoin-delay=2\n")},
        &out);
    ck_assert_msg(rc == 0, "%s", out.c_str());
    ck_assert_msg(out.find("warning: [record r] key: nothing configured here publishes other/*") !=
                      std::string::npos,
                  "%s", out.c_str());
    ck_assert_msg(out.find("join delay 2 s, keep 3600 s / 2 GiB") != std::string::npos, "%s",
                  out.c_str());
    ck_assert_msg(out.find("passphrase set, allow 1 pattern(s)") != std::string::npos, "%s",
                  out.c_str());
    ck_assert_msg(out.find("0123456789ab") == std::string::npos, "the passphrase was shown:\n%s",
                  out.c_str());
  }
  // Several problems are listed together.
  std::string out;
  run_arcly({"check", write_config(dir, "[rtsp a]\nkey=bad\n[record r]\nkey=x\nsegment=0\n")},
            &out);
  ck_assert_int_ge(count_text(out, "\n  ["), 3);
  // A valid file is explained.
  const int rc = run_arcly({"check", write_config(dir,
                                                  "[app live]\ncache-window=10\n[rtsp "
                                                  "cam1]\nurl=rtsp://u:pw@10.0.0.1/s\nkey=live/"
                                                  "cam1\n[record all]\nkey=live/*\npre-roll=5\n")},
                           &out);
  ck_assert_msg(rc == 0, "%s", out.c_str());
  ck_assert(out.find("rtsp://***@10.0.0.1/s") != std::string::npos);
  ck_assert(out.find("pw@") == std::string::npos);
  // The documented example configuration is valid.
  const std::string example =
      std::string(std::getenv("ARCLY_SOURCE_ROOT")) + "/pipelines/arcly.conf";
  ck_assert_msg(run_arcly({"check", example}, &out) == 0, "%s", out.c_str());
  fs::remove_all(dir);
}
END_TEST

START_TEST(demo_records_playable_segments_that_start_before_the_recorder_joined) {
  const std::string dir = scratch("demo");
  const std::string json = dir + "/stats.json";
  std::string out;
  const int rc =
      run_arcly({"demo", "--for", "10", "--dir", dir + "/rec", "--stats-json", json}, &out);
  ck_assert_msg(rc == 0, "%s", out.c_str());
  const auto files = files_under(dir + "/rec", ".mp4");
  ck_assert_msg(!files.empty(), "no recording:\n%s", out.c_str());
  for (const auto& f : files) {
    ck_assert_msg(f.find(dir + "/rec/live/demo/") == 0, "%s", f.c_str());
    auto p = ffprobe(f);
    ck_assert_msg(p.ok && p.video && p.audio && p.first_is_key && p.duration > 0.5, "ffprobe: %s",
                  f.c_str());
    ck_assert_msg(discover(f) > 0.5, "GstDiscoverer cannot play %s", f.c_str());
  }
  // Pre-event footage: the first recorded frame is older than the moment the recorder joined.
  const std::string text = read_all(json);
  std::smatch m;
  ck_assert(std::regex_search(text, m,
                              std::regex("\"type\":\"segment-opened\"[^}]*\"first_publisher_ts\":(-"
                                         "?[0-9]+),\"trigger_publisher_ts\":(-?[0-9]+)")));
  const long long first = std::stoll(m[1]), trigger = std::stoll(m[2]);
  ck_assert_msg(first > 0 && trigger > 0 && trigger - first >= 1'000'000'000,
                "first frame %lld vs trigger %lld: less than 1 s of pre-event footage", first,
                trigger);
  ck_assert(out.find("recordings:") != std::string::npos);
  fs::remove_all(dir);
}
END_TEST

START_TEST(run_records_an_rtsp_camera_and_an_srt_caller_and_sigint_finalizes) {
  const std::string dir = scratch("run");
  const int rtsp_port = free_port();
  const int srt_port = free_port(SOCK_DGRAM);
  auto camera = rtsp_server(rtsp_port, {"--audio"});
  const std::string json = dir + "/stats.json";
  const std::string conf =
      write_config(dir,
                   "[app live]\ncache-window=4\n"
                   "[rtsp cam1]\nurl=rtsp://127.0.0.1:" +
                       std::to_string(rtsp_port) +
                       "/cam\nkey=live/cam1\ntransport=tcp\ntimeout=3\n"
                       "[srt contrib]\nlisten=srt://:" +
                       std::to_string(srt_port) +
                       "\nallow=live/*\n"
                       "[record all]\nkey=live/*\ndir=" +
                       dir +
                       "/rec\nsegment=3\npre-roll=1\n"
                       "[output monitor]\nkey=live/cam1\npipeline=queue ! fakesink sync=false\n");
  Process arcly({arcly_bin(), "run", conf, "--stats-json", json});
  ck_assert(wait_for_text(json, "\"key\":\"live/cam1\"", 30s));
  Process ff({"ffmpeg",
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
              "mpegts",
              "-srt_streamid",
              "#!::r=live/srt1,m=publish",
              "srt://127.0.0.1:" + std::to_string(srt_port)});
  ck_assert(wait_for_text(json, "live/srt1/", 30s));  // a segment of it opened
  ck_assert(wait_for_text(json, "\"segments\":2", 30s));
  arcly.stop(SIGINT);  // waits for it to exit
  for (const char* key : {"live/cam1", "live/srt1"}) {
    const auto files = files_under(dir + "/rec/" + key, ".mp4");
    ck_assert_msg(!files.empty(), "no recording of %s", key);
    for (const auto& f : files) {
      auto p = ffprobe(f);
      ck_assert_msg(p.ok && p.video && p.audio && p.first_is_key && p.duration > 0.5,
                    "%s: ok=%d video=%d audio=%d key=%d duration=%f", f.c_str(), p.ok, p.video,
                    p.audio, p.first_is_key, p.duration);
      ck_assert_msg(discover(f) > 0.5, "GstDiscoverer cannot play %s", f.c_str());
    }
  }
  ck_assert(read_all(json).find("\"type\":\"recorder-finished\"") != std::string::npos);
  fs::remove_all(dir);
}
END_TEST

START_TEST(sigkill_leaves_playable_files) {
  const std::string dir = scratch("kill");
  const std::string json = dir + "/stats.json";
  for (const char* format : {"mp4", "mkv", "ts"}) {
    const std::string conf = write_config(
        dir,
        std::string("[pipeline cam]\nkey=live/cam\nsource=videotestsrc is-live=true ! "
                    "video/x-raw,width=320,height=240,framerate=30/1 ! x264enc tune=zerolatency "
                    "speed-preset=ultrafast key-int-max=30  audiotestsrc is-live=true ! avenc_aac\n"
                    "[record r]\nkey=live/cam\nsegment=60\nformat=") +
            format + "\ndir=" + dir + "/" + format + "\n");
    fs::remove(json);
    Process arcly({arcly_bin(), "run", conf, "--stats-json", json});
    ck_assert(wait_for_text(json, "segment-opened", 30s));
    // Wait for a few fragments' worth of media (the frame counter, not the clock),
    // then until the recorder has put a decodable fragment on disk: the stream
    // runs ahead of a recorder slowed down by sanitizers.
    ck_assert(wait_for_regex(json, "\"keyframes\":([4-9]|[1-9][0-9])", 30s));
    const std::string under = dir + "/" + format, ext = std::string(".") + format;
    const auto on_disk = [&] {
      const auto now = files_under(under, ext);
      if (now.size() != 1) return false;
      const auto probe = ffprobe(now[0]);
      return probe.ok && probe.video && probe.first_is_key;
    };
    for (auto until = std::chrono::steady_clock::now() + 60s;
         !on_disk() && std::chrono::steady_clock::now() < until;)
      std::this_thread::sleep_for(200ms);  // polling the file, not a timing assertion
    arcly.stop(SIGKILL);
    const auto files = files_under(dir + "/" + format, std::string(".") + format);
    ck_assert_msg(files.size() == 1, "%s: %zu files", format, files.size());
    auto p = ffprobe(files[0]);
    ck_assert_msg(p.ok && p.video && p.first_is_key, "%s after SIGKILL: ok=%d video=%d key=%d",
                  format, p.ok, p.video, p.first_is_key);
    ck_assert_msg(discover(files[0]) > 0.5 || std::string(format) == "mkv",
                  "GstDiscoverer cannot play %s after SIGKILL", files[0].c_str());
  }
  fs::remove_all(dir);
}
END_TEST

START_TEST(a_camera_restart_inside_grace_continues_the_recording_past_grace_starts_anew) {
  const std::string dir = scratch("grace");
  const int port = free_port();
  auto camera = rtsp_server(port);
  const std::string json = dir + "/stats.json";
  const std::string conf = write_config(
      dir, "[rtsp cam1]\nurl=rtsp://127.0.0.1:" + std::to_string(port) +
               "/cam\nkey=live/cam1\n"
               "transport=tcp\ntimeout=2\ngrace=6\nbackoff-initial=0.2\nbackoff-max=0.5\n"
               "[record r]\nkey=live/cam1\nsegment=60\ndir=" +
               dir + "/rec\n");
  Process arcly({arcly_bin(), "run", conf, "--stats-json", json});
  ck_assert(wait_for_text(json, "segment-opened", 30s));
  camera.stop();  // reboot inside grace
  ck_assert(wait_for_text(json, "\"state\":\"retrying\"", 30s));
  camera = rtsp_server(port);
  ck_assert(wait_for_text(json, "\"reconnects\":1", 30s));
  std::string text = read_all(json);
  ck_assert_msg(count_text(text, "\"type\":\"recorder-started\"") == 1, "%s",
                text.c_str());  // same recording
  ck_assert_int_eq(count_text(text, "\"type\":\"recorder-finished\""), 0);
  camera.stop();  // now past grace
  ck_assert(wait_for_text(json, "\"type\":\"recorder-finished\"", 40s));
  camera = rtsp_server(port);
  const auto deadline = std::chrono::steady_clock::now() + 40s;
  while (count_text(read_all(json), "\"type\":\"recorder-started\"") < 2 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
  }
  ck_assert_int_eq(count_text(read_all(json), "\"type\":\"recorder-started\""), 2);
  ck_assert(wait_for_text(json, "-0000.mp4", 10s));
  arcly.stop(SIGINT);
  const auto files = files_under(dir + "/rec", ".mp4");
  ck_assert_int_eq(files.size(), 2);  // one recording per publish, the blip inside the first
  for (const auto& f : files) ck_assert_msg(ffprobe(f).ok && discover(f) > 0, "%s", f.c_str());
  fs::remove_all(dir);
}
END_TEST

START_TEST(an_unwritable_dir_is_reported_and_retried_while_the_rest_runs) {
  const std::string dir = scratch("unwritable");
  const std::string json = dir + "/stats.json";
  std::ofstream(dir + "/file") << "not a directory";
  const std::string conf =
      write_config(dir,
                   "[pipeline cam]\nkey=live/cam\nsource=videotestsrc is-live=true ! "
                   "video/x-raw,width=160,height=120 ! "
                   "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15\n"
                   "[record bad]\nkey=live/cam\ndir=" +
                       dir +
                       "/file/rec\n"
                       "[record good]\nkey=live/cam\nsegment=2\ndir=" +
                       dir + "/good\n");
  Process arcly({arcly_bin(), "run", conf, "--stats-json", json});
  ck_assert(wait_for_text(json, "\"type\":\"recorder-error\",\"recorder\":\"bad\"", 30s));
  ck_assert(wait_for_text(
      json, "\"recorder\":\"good\",\"key\":\"live/cam\",\"location\":\"" + dir + "/good/", 30s));
  // It keeps retrying.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (count_text(read_all(json), "\"type\":\"recorder-error\",\"recorder\":\"bad\"") < 2 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
  }
  ck_assert_int_ge(count_text(read_all(json), "\"type\":\"recorder-error\",\"recorder\":\"bad\""),
                   2);
  arcly.stop(SIGINT);
  ck_assert(!files_under(dir + "/good", ".mp4").empty());
  fs::remove_all(dir);
}
END_TEST

START_TEST(retention_deletes_the_oldest_segments) {
  const std::string dir = scratch("retention");
  const std::string json = dir + "/stats.json";
  const std::string conf =
      write_config(dir,
                   "[pipeline cam]\nkey=live/cam\nsource=videotestsrc is-live=true ! "
                   "video/x-raw,width=320,height=240 ! "
                   "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=2000\n"
                   "[record r]\nkey=live/cam\nsegment=1\nmax-bytes=600K\ndir=" +
                       dir + "/rec\n");
  Process arcly({arcly_bin(), "run", conf, "--stats-json", json});
  ck_assert(wait_for_text(json, "segment-deleted", 60s));
  arcly.stop(SIGINT);
  const std::string text = read_all(json);
  std::smatch m;
  ck_assert(std::regex_search(
      text, m, std::regex("\"type\":\"segment-deleted\"[^}]*\"location\":\"([^\"]+)\"")));
  ck_assert_msg(!fs::exists(m[1].str()), "%s still exists", m[1].str().c_str());
  std::uint64_t total = 0;
  for (const auto& f : files_under(dir + "/rec", ".mp4")) total += fs::file_size(f);
  ck_assert_msg(total < 600 * 1024 + 600 * 1024, "%llu bytes kept",
                static_cast<unsigned long long>(total));
  fs::remove_all(dir);
}
END_TEST

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  gst_pb_utils_init();
  return testing::run_suite(
      "host",
      {check_lists_every_problem_with_its_section_and_key,
       demo_records_playable_segments_that_start_before_the_recorder_joined,
       run_records_an_rtsp_camera_and_an_srt_caller_and_sigint_finalizes,
       sigkill_leaves_playable_files,
       a_camera_restart_inside_grace_continues_the_recording_past_grace_starts_anew,
       an_unwritable_dir_is_reported_and_retried_while_the_rest_runs,
       retention_deletes_the_oldest_segments},
      400);
}
