#include "diffusion/png.h"

#include <png.h>
#include <unistd.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>

#include "io/output_file.h"

namespace sluice::diffusion {

namespace {

void AppendToString(png_structp png, png_bytep data, png_size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), n);
}
void FlushNothing(png_structp) {}

}  // namespace

Result<std::string> EncodePng(int width, int height, const std::vector<uint8_t>& rgb,
                              const std::vector<std::pair<std::string, std::string>>& text) {
  if (width <= 0 || height <= 0 || rgb.size() != static_cast<size_t>(width) * height * 3) {
    return InvalidArgument("PNG: ", rgb.size(), " bytes for ", width, "x", height);
  }
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png != nullptr ? png_create_info_struct(png) : nullptr;
  if (png == nullptr || info == nullptr) {
    png_destroy_write_struct(&png, &info);
    return Internal("libpng: cannot create a write structure");
  }
  if (setjmp(png_jmpbuf(png))) {  // libpng reports errors by longjmp
    png_destroy_write_struct(&png, &info);
    return Internal("libpng failed while encoding a ", width, "x", height, " image");
  }
  png_set_write_fn(png, &out, AppendToString, FlushNothing);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  std::vector<png_text> chunks(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    chunks[i].compression = PNG_TEXT_COMPRESSION_NONE;
    chunks[i].key = const_cast<char*>(text[i].first.c_str());
    chunks[i].text = const_cast<char*>(text[i].second.c_str());
    chunks[i].text_length = text[i].second.size();
  }
  if (!chunks.empty()) png_set_text(png, info, chunks.data(), static_cast<int>(chunks.size()));
  png_write_info(png, info);
  for (int y = 0; y < height; ++y) {
    png_write_row(png, const_cast<png_bytep>(rgb.data() + static_cast<size_t>(y) * width * 3));
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

Status WritePng(const std::string& path, int width, int height, const std::vector<uint8_t>& rgb,
                const std::vector<std::pair<std::string, std::string>>& text) {
  if (width <= 0 || height <= 0 || rgb.size() != static_cast<size_t>(width) * height * 3) {
    return InvalidArgument("PNG ", path, ": ", rgb.size(), " bytes for ", width, "x", height);
  }
  ASSIGN_OR_RETURN(const std::string bytes, EncodePng(width, height, rgb, text));
  std::string temp;
  ASSIGN_OR_RETURN(int fd, CreateTempOutput(path, ".tmp-", &temp));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : ENOSPC;
      ::close(fd);
      ::unlink(temp.c_str());
      return IoError(temp, ": write: ", ErrnoString(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    return IoError(temp, ": fsync: ", ErrnoString(err));
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    return IoError("rename ", temp, " -> ", path, ": ", ErrnoString(err));
  }
  return Status::Ok();
}

namespace {

// The libpng part of ReadPng on an open file (which the caller closes: setjmp and fclose in one
// function confuse GCC's use-after-free analysis).
Result<PngImage> ReadPngFrom(FILE* f, const std::string& path) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png != nullptr ? png_create_info_struct(png) : nullptr;
  PngImage img;
  if (png == nullptr || info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return Corrupt(path, ": not a PNG libpng can read as 8-bit RGB");
  }
  png_init_io(png, f);
  png_read_info(png, info);
  if (png_get_bit_depth(png, info) != 8 || png_get_color_type(png, info) != PNG_COLOR_TYPE_RGB) {
    png_destroy_read_struct(&png, &info, nullptr);
    return Unsupported(path, ": only 8-bit RGB PNGs are read");
  }
  img.width = static_cast<int>(png_get_image_width(png, info));
  img.height = static_cast<int>(png_get_image_height(png, info));
  img.rgb.resize(static_cast<size_t>(img.width) * img.height * 3);
  for (int y = 0; y < img.height; ++y) {
    png_read_row(png, img.rgb.data() + static_cast<size_t>(y) * img.width * 3, nullptr);
  }
  png_read_end(png, info);
  png_textp chunks = nullptr;
  int n = 0;
  png_get_text(png, info, &chunks, &n);
  for (int i = 0; i < n; ++i) {
    img.text.emplace_back(chunks[i].key, std::string(chunks[i].text, chunks[i].text_length));
  }
  png_destroy_read_struct(&png, &info, nullptr);
  return img;
}

}  // namespace

Result<PngImage> ReadPng(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return IoError(path, ": ", ErrnoString(errno));
  Result<PngImage> img = ReadPngFrom(f, path);
  std::fclose(f);
  return img;
}

}  // namespace sluice::diffusion
