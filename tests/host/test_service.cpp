// arcly as a long-running service: the real `arcly run` process, real signals.
//
// SIGHUP reloads per section (unchanged sections keep their stream, subscribers and
// open segment; removed ones finalize; added ones start; changed ones restart; a bad
// file is refused whole with its problems logged); SIGPIPE does not end the process;
// SIGTERM finalizes every recorder; the log is one line per event when stdout is not
// a terminal; relative dir= paths resolve against the config file's directory.
#include <sys/wait.h>

#include <mutex>

#include "host_helpers.hpp"

using namespace host_testing;

namespace {

std::string camera(const std::string& name, const std::string& pattern = "smpte") {
  return "[pipeline " + name + "]\nkey=live/" + name +
         "\nsource=videotestsrc is-live=true pattern=" + pattern +
         " ! video/x-raw,width=160,height=120,framerate=30/1 ! x264enc tune=zerolatency "
         "speed-preset=ultrafast key-int-max=30\n";
}

std::string recorder(const std::string& name, const std::string& key, const std::string& dir) {
  return "[record " + name + "]\nkey=" + key + "\ndir=" + dir + "\nsegment=60\n";
}

void expect_playable(const std::string& dir) {
  const auto files = files_under(dir, ".mp4");
  ck_assert_msg(files.size() == 1, "%s: %zu files", dir.c_str(), files.size());
  const auto p = ffprobe(files[0]);
  ck_assert_msg(p.ok && p.video && p.first_is_key && p.duration > 0.3,
                "%s: ok=%d video=%d key=%d duration=%f", files[0].c_str(), p.ok, p.video,
                p.first_is_key, p.duration);
  ck_assert_msg(discover(files[0]) > 0.3, "GstDiscoverer cannot play %s", files[0].c_str());
}

}  // namespace

START_TEST(sighup_reloads_changed_sections_and_leaves_the_rest_untouched) {
  const std::string dir = scratch("reload");
  const std::string json = dir + "/stats.json";
  const std::string stable = "[app live]\ncache-window=4\n" + camera("cam1") +
                             recorder("keep", "live/cam1", "rec-keep") +
                             "[output watch]\nkey=live/cam1\npipeline=fakesink sync=false\n";
  const std::string conf =
      write_config(dir, stable + camera("cam2") + recorder("gone", "live/cam2", "rec-gone"));
  // Started from another directory: relative dir= resolve against the config's.
  Service arcly({arcly_bin(), "run", conf, "--stats-json", json},
                fs::temp_directory_path().string());
  ck_assert(wait_for_text(json, "\"type\":\"segment-opened\",\"recorder\":\"keep\"", 60s));
  ck_assert(wait_for_text(json, "\"type\":\"segment-opened\",\"recorder\":\"gone\"", 60s));
  ck_assert(arcly.wait_for("[pipeline cam1] connected: publishing live/cam1", 30s));

  // Remove [record gone], change [pipeline cam2], add [record new].
  write_config(dir, stable + camera("cam2", "ball") + recorder("new", "live/cam2", "rec-new"));
  arcly.signal(SIGHUP);
  ck_assert_msg(arcly.wait_for("reloaded", 60s), "%s", arcly.text().c_str());
  const std::string log = arcly.text();
  ck_assert_msg(
      log.find("4 sections unchanged; started [record new]; stopped [record gone]; restarted "
               "[pipeline cam2]") != std::string::npos,
      "%s", log.c_str());
  // The removed recorder finalized its file while its stream stayed live.
  ck_assert(wait_for_text(json, "\"type\":\"recorder-finished\",\"recorder\":\"gone\"", 30s));
  expect_playable(dir + "/rec-gone");
  ck_assert(wait_for_text(json, "\"type\":\"segment-opened\",\"recorder\":\"new\"", 60s));

  // A file with a problem is refused whole, naming section and key; nothing stops.
  write_config(dir, stable + camera("cam2", "ball") + recorder("new", "live/cam2", "rec-new") +
                        "[record broken]\nkey=live/cam1\nsegmnet=5\n");
  arcly.signal(SIGHUP);
  ck_assert_msg(arcly.wait_for("reload refused", 60s), "%s", arcly.text().c_str());
  ck_assert(arcly.wait_for("[record broken] segmnet: unknown key", 5s));

  arcly.signal(SIGINT);
  const int status = arcly.wait();
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
  const std::string text = read_all(json);
  // The unchanged recorder wrote one segment from start to end (no gap, no reopen),
  // and the unchanged camera never reconnected.
  ck_assert_int_eq(count_text(text, "\"type\":\"segment-opened\",\"recorder\":\"keep\""), 1);
  ck_assert_int_eq(count_text(text, "\"type\":\"recorder-started\",\"recorder\":\"keep\""), 1);
  ck_assert_int_eq(count_text(arcly.text(), "[pipeline cam1] connected"), 1);
  ck_assert_int_eq(count_text(arcly.text(), "[pipeline cam1] reconnected"), 0);
  expect_playable(dir + "/rec-keep");
  expect_playable(dir + "/rec-new");
  // Not a terminal: events, never a status line per stream per second.
  ck_assert_msg(arcly.text().find("kbit/s") == std::string::npos, "%s", arcly.text().c_str());
  fs::remove_all(dir);
}
END_TEST

START_TEST(a_reader_that_goes_away_does_not_end_the_host) {
  // `arcly run … --stats-json - | head -1`: SIGPIPE must not kill it (exit 141).
  const std::string dir = scratch("sigpipe");
  const std::string conf =
      write_config(dir, camera("cam") + recorder("r", "live/cam", dir + "/rec"));
  int out[2];
  ck_assert_int_eq(pipe(out), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    close(out[1]);
    execl(arcly_bin().c_str(), arcly_bin().c_str(), "run", conf.c_str(), "--stats-json", "-",
          "--for", "3", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  FILE* in = fdopen(out[0], "r");
  char line[8192];
  ck_assert(std::fgets(line, sizeof line, in) != nullptr);  // the first JSON object
  std::fclose(in);  // `head -1` exits: every later write meets a closed pipe
  int status = 0;
  waitpid(pid, &status, 0);
  ck_assert_msg(!WIFSIGNALED(status), "killed by signal %d",
                WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  ck_assert_int_eq(WEXITSTATUS(status), 0);
  expect_playable(dir + "/rec");  // it went on to finalize its recording
  fs::remove_all(dir);
}
END_TEST

START_TEST(sigterm_finalizes_every_recorder) {
  const std::string dir = scratch("sigterm");
  const std::string json = dir + "/stats.json";
  std::string text = camera("cam");
  constexpr int kRecorders = 6;
  for (int i = 0; i < kRecorders; ++i)
    text += recorder("r" + std::to_string(i), "live/cam", "rec" + std::to_string(i));
  const std::string conf = write_config(dir, text);
  Service arcly({arcly_bin(), "run", conf, "--stats-json", json});
  for (int i = 0; i < kRecorders; ++i) {
    ck_assert(wait_for_text(
        json, "\"type\":\"segment-opened\",\"recorder\":\"r" + std::to_string(i) + "\"", 60s));
  }
  arcly.signal(SIGTERM);
  const int status = arcly.wait();
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
  ck_assert_int_eq(count_text(read_all(json), "\"type\":\"recorder-finished\""), kRecorders);
  for (int i = 0; i < kRecorders; ++i) expect_playable(dir + "/rec" + std::to_string(i));
  fs::remove_all(dir);
}
END_TEST

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  gst_pb_utils_init();
  return testing::run_suite(
      "service",
      {sighup_reloads_changed_sections_and_leaves_the_rest_untouched,
       a_reader_that_goes_away_does_not_end_the_host, sigterm_finalizes_every_recorder},
      400);
}
