// Compiled into every program of a ThreadSanitizer build (RILL_TSAN) only.
//
// Debian's librdkafka uses C11 threads (thrd_create, mtx_lock, cnd_wait...),
// which glibc implements on its pthreads internally, past TSan's interceptors.
// So librdkafka's threads ran without TSan's per-thread state and crashed at
// their first malloc (with GCC 12 and clang 14 alike), and its locks were
// invisible, which made every hand-over between its threads look like a race.
// A program's own definitions come before libc's for librdkafka's references:
// these forward each call to the pthread function TSan intercepts. glibc lays
// out mtx_t, cnd_t and once_flag as pthread_mutex_t, pthread_cond_t and
// pthread_once_t.
#include <cerrno>
#include <cstdint>
#include <ctime>
#include <new>

#include <pthread.h>

namespace {

// C11's values, as glibc's <threads.h> declares them.
constexpr int kSuccess = 0;
constexpr int kBusy = 1;
constexpr int kError = 2;
constexpr int kNoMemory = 3;
constexpr int kTimedOut = 4;
constexpr int kRecursive = 1;

int result_of(int error) {
  switch (error) {
    case 0:
      return kSuccess;
    case EBUSY:
      return kBusy;
    case ETIMEDOUT:
      return kTimedOut;
    case ENOMEM:
    case EAGAIN:
      return kNoMemory;
    default:
      return kError;
  }
}

struct Start {
  int (*function)(void*);
  void* argument;
};

void* run(void* opaque) {
  const Start start = *static_cast<Start*>(opaque);
  delete static_cast<Start*>(opaque);
  // thrd_join reads the result back from the pointer's bits.
  return reinterpret_cast<void*>(static_cast<intptr_t>(start.function(start.argument)));
}

pthread_mutex_t* mutex(void* m) {
  return static_cast<pthread_mutex_t*>(m);
}
pthread_cond_t* condition(void* c) {
  return static_cast<pthread_cond_t*>(c);
}

}  // namespace

extern "C" {

int thrd_create(pthread_t* thread, int (*function)(void*), void* argument) {
  auto* start = new (std::nothrow) Start{function, argument};
  if (start == nullptr) return kNoMemory;
  const int error = pthread_create(thread, nullptr, run, start);
  if (error != 0) delete start;
  return result_of(error);
}

int thrd_join(pthread_t thread, int* result) {
  void* returned = nullptr;
  const int error = pthread_join(thread, &returned);
  if (error == 0 && result != nullptr)
    *result = static_cast<int>(reinterpret_cast<intptr_t>(returned));
  return result_of(error);
}

int mtx_init(void* m, int type) {
  pthread_mutexattr_t attributes;
  pthread_mutexattr_init(&attributes);
  if ((type & kRecursive) != 0) pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_RECURSIVE);
  const int error = pthread_mutex_init(mutex(m), &attributes);
  pthread_mutexattr_destroy(&attributes);
  return result_of(error);
}
int mtx_lock(void* m) {
  return result_of(pthread_mutex_lock(mutex(m)));
}
int mtx_trylock(void* m) {
  return result_of(pthread_mutex_trylock(mutex(m)));
}
int mtx_unlock(void* m) {
  return result_of(pthread_mutex_unlock(mutex(m)));
}
void mtx_destroy(void* m) {
  pthread_mutex_destroy(mutex(m));
}

int cnd_init(void* c) {
  return result_of(pthread_cond_init(condition(c), nullptr));
}
int cnd_signal(void* c) {
  return result_of(pthread_cond_signal(condition(c)));
}
int cnd_broadcast(void* c) {
  return result_of(pthread_cond_broadcast(condition(c)));
}
int cnd_wait(void* c, void* m) {
  return result_of(pthread_cond_wait(condition(c), mutex(m)));
}
int cnd_timedwait(void* c, void* m, const timespec* until) {
  return result_of(pthread_cond_timedwait(condition(c), mutex(m), until));
}
void cnd_destroy(void* c) {
  pthread_cond_destroy(condition(c));
}

void call_once(pthread_once_t* flag, void (*function)()) {
  pthread_once(flag, function);
}

}  // extern "C"
