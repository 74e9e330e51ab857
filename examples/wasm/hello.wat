;; WebAssembly, WASI preview 1, CGI style: the request body arrives on stdin (request line and
;; headers in the environment: REQUEST_METHOD, PATH_INFO, QUERY_STRING, HTTP_*), and the answer
;; goes to stdout as header lines ("Status: 200 OK" sets the status), a blank line, the body.
;; This one answers the body upper-cased. hello.wasm is this file assembled: node examples/wasm/build.mjs
;;
;;   faas deploy POST:/shout examples/wasm/hello.wasm --runtime wasm
;;   faas invoke POST:/shout --data 'hello wasm'     → HELLO WASM
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  ;; 41 bytes: the header block and its blank line
  (data (i32.const 1024) "Status: 200 OK\nContent-Type: text/plain\n\n")

  ;; writes len bytes at ptr to stdout (one iovec at 0, bytes written at 8)
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  (func (export "_start")
    (local $n i32) (local $i i32) (local $c i32)
    (call $write (i32.const 1024) (i32.const 41))
    (block $done
      (loop $read
        ;; read up to 60000 bytes to 4096: iovec at 16, bytes read at 24
        (i32.store (i32.const 16) (i32.const 4096))
        (i32.store (i32.const 20) (i32.const 60000))
        (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
        (local.set $n (i32.load (i32.const 24)))
        (br_if $done (i32.eqz (local.get $n)))
        ;; a-z → A-Z
        (local.set $i (i32.const 0))
        (block $upper_done
          (loop $upper
            (br_if $upper_done (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $c (i32.load8_u (i32.add (i32.const 4096) (local.get $i))))
            (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
              (then (i32.store8 (i32.add (i32.const 4096) (local.get $i)) (i32.sub (local.get $c) (i32.const 32)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $upper)))
        (call $write (i32.const 4096) (local.get $n))
        (br $read)))))
