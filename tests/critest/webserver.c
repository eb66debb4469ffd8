// A minimal HTTP server standing in for the nginx and httpd images critest runs (critest only
// needs: a process named nginx/httpd whose /proc/1/cmdline says "master process", a pid file
// /var/run/<name>.pid, "GET /" answered 200 on the configured port, and for httpd a log line
// naming it). Built statically by tests/critest/images.sh; never used outside test images.
//
// Usage: <nginx|httpd> [port]   (default port 80)
#include <arpa/inet.h>
#include <libgen.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <signal.h>

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}

int main(int argc, char** argv) {
  char self[256];
  snprintf(self, sizeof self, "%s", argv[0]);
  const char* name = basename(self);
  const char* port_arg = argc > 1 ? argv[1] : "80";
  if (strstr(argv[0], "master process") == NULL) {
    // Re-exec under nginx's process title so /proc/1/cmdline reads like nginx's master.
    char title[128];
    snprintf(title, sizeof title, "%s: master process %s", name, name);
    char path[256];
    snprintf(path, sizeof path, "/usr/sbin/%s", name);
    char* args[] = {title, (char*)port_arg, NULL};
    execv(path, args);
    perror("execv");
    return 1;
  }
  name = strcmp(strstr(argv[0], "master process") + 15, "httpd") == 0 ? "httpd" : "nginx";
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  signal(SIGQUIT, on_term);
  char pidfile[64];
  snprintf(pidfile, sizeof pidfile, "/var/run/%s.pid", name);
  FILE* f = fopen(pidfile, "w");
  if (f) {
    fprintf(f, "%d\n", getpid());
    fclose(f);
  }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)atoi(port_arg));
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(s, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(s, 64) != 0) {
    perror("bind/listen");
    return 1;
  }
  if (strcmp(name, "httpd") == 0) {
    fprintf(stderr, "AH00094: Command line: 'httpd -D FOREGROUND'\n");
  } else {
    fprintf(stderr, "nginx: master process started on port %s\n", port_arg);
  }
  static const char body[] = "<html><body><h1>Welcome!</h1></body></html>\n";
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    char buf[2048];
    ssize_t n = read(c, buf, sizeof buf);
    (void)n;
    char resp[512];
    int len = snprintf(resp, sizeof resp,
                       "HTTP/1.0 200 OK\r\nServer: %s\r\nContent-Type: text/html\r\n"
                       "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                       name, sizeof body - 1, body);
    ssize_t w = write(c, resp, (size_t)len);
    (void)w;
    close(c);
  }
}
