from smart_cli.cli import main

main()
