package function

import "strings"

// greeting is in a file of its own: a module is compiled whole.
func greeting(word, name string) string {
	if word == "" {
		word = "hello"
	}
	if strings.TrimSpace(name) == "" {
		name = "world"
	}
	return word + ", " + strings.TrimSpace(name)
}
