# SPDX-License-Identifier: MIT
# bash completion for tlsguard(8). Installed as
# share/bash-completion/completions/tlsguard. Keep in step with
# `tlsguard <command> --help` (tests/integration/test_deploy_docs.sh checks it).
# shellcheck shell=bash

_tlsguard()
{
	local cur prev words cword
	if declare -F _init_completion >/dev/null 2>&1; then
		_init_completion || return
	else
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD - 1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	fi

	local commands="agent status events policy decrypt uninstall mount version help"
	local cmd="" i
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-*) ;;
		*)
			cmd=${words[i]}
			break
			;;
		esac
	done

	if [[ -z $cmd ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$commands --help --version" -- "$cur")
		return
	fi

	# Arguments of options, whatever the command.
	case $prev in
	-c | --config | -e | --events-file | -k | --key-file)
		_tlsguard_files
		return
		;;
	-g | --cgroup | -p | --pin-path)
		_tlsguard_dirs
		return
		;;
	-s | --socket)
		_tlsguard_files
		return
		;;
	-m | --mode)
		mapfile -t COMPREPLY < <(compgen -W "audit enforce" -- "$cur")
		return
		;;
	--dns-hooks)
		mapfile -t COMPREPLY < <(compgen -W "auto chained separate" -- "$cur")
		return
		;;
	-o | --output)
		mapfile -t COMPREPLY < <(compgen -W "text json" -- "$cur")
		return
		;;
	-t | --type)
		mapfile -t COMPREPLY < <(compgen -W "plaintext blocked_connect weak_tls sni_mismatch tls agent" -- "$cur")
		return
		;;
	-w | --workload)
		return
		;;
	esac

	local opts=""
	case $cmd in
	agent)
		opts="--config --cgroup --mode --events-file --pin-path --socket --dns-hooks --verbose --help"
		;;
	status)
		opts="--socket --output --check --help"
		;;
	events)
		opts="--socket --follow --type --workload --output --help"
		;;
	decrypt)
		opts="--key-file --help"
		if [[ $cur != -* ]]; then
			_tlsguard_files
			return
		fi
		;;
	uninstall | mount)
		opts="--pin-path --help"
		;;
	version | help)
		opts=""
		;;
	policy)
		local sub=""
		for ((i = i + 1; i < cword; i++)); do
			case ${words[i]} in
			-*) ;;
			*)
				sub=${words[i]}
				break
				;;
			esac
		done
		case $sub in
		"")
			mapfile -t COMPREPLY < <(compgen -W "check show-default --help" -- "$cur")
			;;
		check)
			if [[ $prev == --cgroup || $prev == -c ]]; then
				_tlsguard_dirs
			elif [[ $cur == -* ]]; then
				mapfile -t COMPREPLY < <(compgen -W "--cgroup --offline --help" -- "$cur")
			else
				_tlsguard_files
			fi
			;;
		esac
		return
		;;
	esac
	mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
}

_tlsguard_files()
{
	if declare -F _filedir >/dev/null 2>&1; then
		_filedir
	else
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
	fi
}

_tlsguard_dirs()
{
	if declare -F _filedir >/dev/null 2>&1; then
		_filedir -d
	else
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
	fi
}

complete -F _tlsguard tlsguard
