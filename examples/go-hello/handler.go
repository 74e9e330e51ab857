// A Go function as OpenFaaS's golang-http template writes one: package function, and
// Handle(w, r) with net/http's own types. The gateway compiles this module with its runtime
// host (faas deploy GET:/go-hello examples/go-hello --runtime go) and runs the program in the
// same sandbox as node and python functions.
package function

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
)

func Handle(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		name = string(body)
	}
	fmt.Println("greeting", name) // in the gateway's log, tagged with this call's request id
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{
		"greeting":  greeting(os.Getenv("GREETING"), name),
		"requestId": r.Header.Get("X-Request-Id"),
	})
}
