from cam.cli.main import main

raise SystemExit(main())
