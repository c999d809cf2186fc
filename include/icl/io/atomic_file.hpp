/// @file
/// Atomic file replacement: the bytes go to a temporary file in the target's folder, which is
/// flushed to disk (fsync) and renamed over the target, and the folder is synced so that the rename
/// itself survives a crash. A reader, or a process killed at any moment of the write, sees either the
/// complete old file or the complete new one, never a truncated mix (docs/sweeps.md "Cell folder",
/// docs/io.md). POSIX only (rename(2) is atomic within one file system).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>

#include "icl/core/error.hpp"

namespace icl::io {

namespace detail {

/// Milliseconds to pause half way through an atomic write of `path`, from the environment variables
/// ICL_TEST_WRITE_PAUSE_MS (0 when unset) and ICL_TEST_WRITE_PAUSE_MATCH (only paths containing this
/// text pause; every path when unset). A test hook only: the kill-and-resume test uses it to land a
/// SIGKILL inside a checkpoint write (tests/sweep/test_crash.py). Read once per process.
inline int write_pause_ms(const std::string& path) {
  static const int ms = [] {
    const char* v = std::getenv("ICL_TEST_WRITE_PAUSE_MS");
    if (!v || !*v) return 0;
    char* end = nullptr;
    const long x = std::strtol(v, &end, 10);
    return (end && *end == '\0' && x > 0 && x < 600000) ? static_cast<int>(x) : 0;
  }();
  if (ms == 0) return 0;
  static const std::string match = [] {
    const char* m = std::getenv("ICL_TEST_WRITE_PAUSE_MATCH");
    return std::string(m ? m : "");
  }();
  return path.find(match) != std::string::npos ? ms : 0;
}

// Writes all of `bytes` to fd (write(2) may write less than asked). False with errno on failure.
inline bool write_all(int fd, std::string_view bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ::ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace detail

/// Replaces `path` with `bytes` atomically (see the file comment). The temporary file is
/// `<path>.tmp.<pid>` in the same folder and is removed on failure.
/// @throws icl::IoError naming the path and the system's reason if any step fails; the old file,
///         if any, is then unchanged.
inline void write_file_atomic(const std::string& path, std::string_view bytes) {
  ICL_CHECK_IO(!path.empty(), "write_file_atomic: path: expected a file name, got an empty string");
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ICL_CHECK_IO(fd >= 0, "cannot open '", tmp, "' for writing: ", std::strerror(errno));
  const auto fail = [&](const char* what) {
    const int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    icl::detail::raise<IoError>("writing '", path, "' failed (", what, " of '", tmp,
                                "'): ", std::strerror(e));
  };
  const int pause = detail::write_pause_ms(path);
  const std::size_t half = pause > 0 ? bytes.size() / 2 : bytes.size();
  if (!detail::write_all(fd, bytes.substr(0, half))) fail("write");
  if (pause > 0) {
    ::fsync(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(pause));
    if (!detail::write_all(fd, bytes.substr(half))) fail("write");
  }
  if (::fsync(fd) != 0) fail("fsync");
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    icl::detail::raise<IoError>("writing '", path, "' failed (close of '", tmp, "'): ", std::strerror(e));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    icl::detail::raise<IoError>("writing '", path, "' failed (rename from '", tmp, "'): ", std::strerror(e));
  }
  // make the rename durable: sync the folder (best effort: some file systems refuse O_RDONLY dirs)
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace icl::io
