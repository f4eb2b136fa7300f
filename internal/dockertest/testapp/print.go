package main

import (
	"fmt"
	"net/http"
	"os"
	"sync"
)

// printer is the program of the "print" mode:
//
//	/app print -addr 127.0.0.1:8080
//
// It answers /healthz and /exit as serve does, and
//
//	/print?stream=stdout|stderr  writes the request's body, as is, to that
//	                             stream in one write (Odoo's logging writes
//	                             a record and its traceback at once)
//
// so that a test makes a container write Odoo's log lines.
func printer(addr string) int {
	var mu sync.Mutex
	exit := make(chan int, 1)
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/ping", ok) // dockertest waits for it
	mux.HandleFunc("/print", func(w http.ResponseWriter, r *http.Request) {
		out := os.Stderr
		switch r.FormValue("stream") {
		case "stdout":
			out = os.Stdout
		case "", "stderr":
		default:
			http.Error(w, "stream must be stdout or stderr", http.StatusBadRequest)
			return
		}
		body := make([]byte, 0, 4096)
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Body.Read(buf)
			body = append(body, buf[:n]...)
			if err != nil {
				break
			}
		}
		mu.Lock()
		_, err := out.Write(body)
		mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, len(body))
	})
	handleExit(mux, exit)
	return listenUntilExit(addr, mux, exit)
}
