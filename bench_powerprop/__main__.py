from bench_powerprop.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
